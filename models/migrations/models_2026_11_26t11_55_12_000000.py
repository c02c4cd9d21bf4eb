"""Supplier search indexes: full text native to each engine, and composite B-trees.

Piccolo has no column type for FTS5 tables or tsvector, and declares no composite
indexes, so this migration is raw SQL:
- SQLite: an external-content FTS5 table over supplier_profile.search_text, kept in step
  by triggers (so every write path, ORM or raw, updates the index).
- PostgreSQL: a generated tsvector column with a GIN index.
Both use prefix matching so "led" finds "LED lights".
- Both: B-trees that serve each filter together with the default sort (rating, id), so
  a filtered page is read in order from an index instead of sorting every match.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine

from models.tables import SupplierProfile

ID = "2026-11-26T11:55:12:000000"
VERSION = "1.38.0"
DESCRIPTION = "Supplier search indexes"

COMMON_FORWARDS = [
    "CREATE INDEX supplier_profile_rating ON supplier_profile (rating DESC, id)",
    "CREATE INDEX supplier_profile_ta_country_rating"
    " ON supplier_profile (ta_status, country, rating DESC, id)",
    "CREATE INDEX supplier_profile_country_rating ON supplier_profile (country, rating DESC, id)",
    "CREATE INDEX supplier_profile_gold_rating ON supplier_profile (gold, rating DESC, id)",
    "CREATE INDEX supplier_profile_ta_limit"
    " ON supplier_profile (ta_limit_minor DESC, rating DESC, id)",
    "CREATE INDEX supplier_category_category ON supplier_category (category, supplier)",
]
COMMON_BACKWARDS = [
    "DROP INDEX IF EXISTS supplier_profile_rating",
    "DROP INDEX IF EXISTS supplier_profile_ta_country_rating",
    "DROP INDEX IF EXISTS supplier_profile_country_rating",
    "DROP INDEX IF EXISTS supplier_profile_gold_rating",
    "DROP INDEX IF EXISTS supplier_profile_ta_limit",
    "DROP INDEX IF EXISTS supplier_category_category",
]
SQLITE_FORWARDS = [
    """CREATE VIRTUAL TABLE supplier_search USING fts5(
        search_text, content='supplier_profile', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3')""",
    """CREATE TRIGGER supplier_search_ai AFTER INSERT ON supplier_profile BEGIN
        INSERT INTO supplier_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    """CREATE TRIGGER supplier_search_ad AFTER DELETE ON supplier_profile BEGIN
        INSERT INTO supplier_search(supplier_search, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    END""",
    """CREATE TRIGGER supplier_search_au AFTER UPDATE OF search_text ON supplier_profile BEGIN
        INSERT INTO supplier_search(supplier_search, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
        INSERT INTO supplier_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    "INSERT INTO supplier_search(supplier_search) VALUES ('rebuild')",
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS supplier_search_au",
    "DROP TRIGGER IF EXISTS supplier_search_ad",
    "DROP TRIGGER IF EXISTS supplier_search_ai",
    "DROP TABLE IF EXISTS supplier_search",
]
POSTGRES_FORWARDS = [
    """ALTER TABLE supplier_profile ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED""",
    "CREATE INDEX supplier_profile_search_vector ON supplier_profile USING GIN (search_vector)",
]
POSTGRES_BACKWARDS = [
    "DROP INDEX IF EXISTS supplier_profile_search_vector",
    "ALTER TABLE supplier_profile DROP COLUMN IF EXISTS search_vector",
]


async def _run(statements_pg: list[str], statements_sqlite: list[str]) -> None:
    db = SupplierProfile._meta.db
    statements = statements_pg if isinstance(db, PostgresEngine) else statements_sqlite
    for sql in statements:
        await SupplierProfile.raw(sql)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        await _run(COMMON_FORWARDS + POSTGRES_FORWARDS, COMMON_FORWARDS + SQLITE_FORWARDS)

    async def run_backwards():
        await _run(POSTGRES_BACKWARDS + COMMON_BACKWARDS, SQLITE_BACKWARDS + COMMON_BACKWARDS)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
