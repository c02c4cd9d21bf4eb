"""Bulk supplier directory for benchmarks: raw SQL in big batches, not the ORM.

The ORM path (`models.suppliers.seed_profile`) costs several round trips per supplier,
which is minutes for 100k rows; here one deterministic generator feeds `executemany`
(SQLite) or COPY (PostgreSQL). The rows match what the gateway itself writes: the same
`search_text` document, lower-cased `supplier_category` rows, UTC timestamps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
from tqdm import tqdm

from bench import progress

BATCH = 5_000
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)  # fixed, so reruns are identical

CATEGORIES: dict[str, list[str]] = {
    "LED Lighting": ["led", "led strip", "led bulb", "panel light", "floodlight", "downlight"],
    "Consumer Electronics": ["earbuds", "power bank", "charger", "smart watch", "speaker"],
    "Textiles": ["cotton fabric", "denim", "polyester", "t-shirt", "yarn", "cotton yarn"],
    "Apparel": ["hoodie", "cotton t-shirt", "jeans", "sportswear", "jacket"],
    "Industrial Machinery": ["cnc machine", "lathe", "pump", "compressor", "gearbox"],
    "Furniture": ["office chair", "sofa", "desk", "cabinet", "bed frame"],
    "Packaging": ["carton box", "pouch", "pallet wrap", "label", "bottle"],
    "Auto Parts": ["brake pad", "spark plug", "headlight", "oil filter", "bearing"],
    "Solar Energy": ["solar panel", "inverter", "lithium battery", "solar led light", "mppt"],
    "Home Appliances": ["blender", "air fryer", "kettle", "fan", "vacuum cleaner"],
    "Hardware & Tools": ["drill", "wrench", "fastener", "hinge", "saw blade"],
    "Plastics & Rubber": ["injection molding", "pvc pipe", "rubber seal", "pet resin"],
    "Medical Supplies": ["nitrile gloves", "face mask", "syringe", "bandage"],
    "Toys": ["plush toy", "building blocks", "rc car", "puzzle"],
    "Beauty & Personal Care": ["shampoo", "lipstick", "hair dryer", "cosmetic bottle"],
}
# Weighted like a B2B directory: mostly Chinese suppliers, a long tail elsewhere.
COUNTRIES: dict[str, int] = {
    "CN": 40, "IN": 8, "VN": 6, "TR": 5, "DE": 5, "US": 4, "IT": 3, "TW": 3, "KR": 3,
    "TH": 3, "MX": 3, "PL": 2, "BR": 2, "ES": 2, "MY": 2, "ID": 2, "PK": 2, "BD": 2,
    "JP": 2, "FR": 1,
}  # fmt: skip
PLACES: dict[str, list[str]] = {
    "CN": ["Shenzhen", "Ningbo", "Yiwu", "Guangzhou", "Dongguan", "Xiamen", "Suzhou"],
    "DE": ["Rhine", "Bavaria", "Hanse", "Schwaben", "Ruhr"],
    "IN": ["Mumbai", "Tirupur", "Ludhiana", "Pune"],
    "VN": ["Hanoi", "Saigon", "Haiphong"],
    "TR": ["Anatolia", "Bursa", "Izmir"],
    "IT": ["Lombardy", "Veneto", "Emilia"],
}
DEFAULT_PLACES = ["Pacific", "Northern", "Golden", "Eastern", "Delta", "Harbor", "Summit"]
CORES = ["Star", "Bright", "Tech", "Works", "Industrial", "Trading", "Manufacturing", "Source",
         "Precision", "Global", "Crafts", "Solutions", "Lighting", "Textile", "Energy",
         "Electronics", "Machinery", "Home", "Pack", "Auto"]  # fmt: skip
SUFFIXES: dict[str, str] = {
    "CN": "Co., Ltd.", "DE": "GmbH", "IN": "Pvt. Ltd.", "VN": "JSC", "TR": "A.S.",
    "IT": "S.r.l.", "US": "Inc.", "MX": "S.A. de C.V.", "BR": "Ltda.", "PL": "Sp. z o.o.",
    "ES": "S.L.", "FR": "SAS", "JP": "K.K.", "KR": "Co., Ltd.", "TW": "Co., Ltd.",
}  # fmt: skip
TA_LIMITS_USD = [10_000, 25_000, 50_000, 120_000, 250_000, 500_000, 1_000_000]


@dataclasses.dataclass(slots=True)
class Batch:
    """Rows in PostgreSQL-native Python types (aware datetimes, bools)."""

    companies: list[tuple[Any, ...]]
    profiles: list[tuple[Any, ...]]
    categories: list[tuple[int, str]]


COMPANY_COLUMNS = ["id", "legal_name", "kind", "country", "created_at"]
PROFILE_COLUMNS = [
    "id", "company", "year_joined", "gold", "verification", "rating", "response_rate",
    "categories", "keywords", "search_text", "ta_status", "ta_limit_minor",
    "ta_limit_currency", "ta_since", "updated_at", "country",
]  # fmt: skip
CATEGORY_COLUMNS = ["supplier", "category"]


def batches(count: int, seed: int) -> Iterator[Batch]:
    """`count` suppliers with ids 1..count (company id == profile id), BATCH at a time."""
    rng = random.Random(seed)
    names = list(CATEGORIES)
    countries, weights = list(COUNTRIES), list(COUNTRIES.values())
    for start in range(1, count + 1, BATCH):
        batch = Batch([], [], [])
        for i in range(start, min(start + BATCH, count + 1)):
            country = rng.choices(countries, weights)[0]
            main = rng.choice(names)
            cats = [main, *rng.sample([c for c in names if c != main], rng.choice([0, 0, 1, 2]))]
            pool = [k for c in cats for k in CATEGORIES[c]]
            keywords = list(dict.fromkeys(rng.sample(CATEGORIES[main], 3) + rng.sample(pool, 2)))
            place = rng.choice(PLACES.get(country, DEFAULT_PLACES))
            name = (
                f"{place} {rng.choice(CORES)} {rng.choice(CORES)} {SUFFIXES.get(country, 'Ltd.')}"
            )
            year = rng.randint(2005, 2025)
            created = dt.datetime(year, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                seconds=rng.randrange(364 * 86_400)
            )
            gold = rng.random() < 0.6
            if gold:
                verification = rng.choices(["NONE", "VERIFIED", "ASSESSED"], [15, 50, 35])[0]
            else:
                verification = rng.choices(["NONE", "VERIFIED"], [85, 15])[0]
            # Trade Assurance needs Gold + verification; 0.47 of those ≈ 40% of Gold overall.
            ta_status, limit, currency, since = "NONE", None, None, None
            if gold and verification != "NONE":
                roll = rng.random()
                if roll < 0.47:
                    ta_status = "ACTIVE"
                elif roll < 0.49:
                    ta_status = "SUSPENDED"
                if ta_status != "NONE":
                    limit, currency = rng.choice(TA_LIMITS_USD) * 100, "USD"
                    since = created + (NOW - created) * rng.random()
            rating = round(min(5.0, max(0.0, rng.gauss(4.1, 0.6))), 1)
            batch.companies.append((i, name, "SUPPLIER", country, created))
            batch.profiles.append(
                (i, i, year, gold, verification, rating, rng.randint(40, 100), "\n".join(cats),
                 "\n".join(keywords), _search_document(name, cats, keywords), ta_status, limit,
                 currency, since, NOW, country)
            )  # fmt: skip
            batch.categories.extend((i, c.lower()) for c in cats)
        yield batch


def _search_document(legal_name: str, categories: list[str], keywords: list[str]) -> str:
    # Same document as models.suppliers.search_document; not imported so that
    # `mypy bench` does not pull in (and re-check) the whole models package.
    return "\n".join([legal_name, *categories, *keywords])


def _progress(count: int, engine: str) -> tqdm[Any]:
    return progress.bar(count, f"seeding {engine}", "supplier")


def _sqlite_time(value: dt.datetime | None) -> str | None:
    # Piccolo stores Timestamptz in SQLite as str() of the UTC datetime; match it exactly.
    return None if value is None else str(value.astimezone(dt.UTC))


def _insert_sql(table: str, columns: list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


def seed_sqlite(path: Path, count: int, seed: int) -> None:
    """One transaction; the FTS5 triggers index each profile as it is inserted."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Throwaway data: skip fsyncs and FK checks (ids are consistent by construction).
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN")
        with _progress(count, "sqlite") as bar:
            for b in batches(count, seed):
                conn.executemany(
                    _insert_sql("company", COMPANY_COLUMNS),
                    [(*c[:4], _sqlite_time(c[4])) for c in b.companies],
                )
                conn.executemany(
                    _insert_sql("supplier_profile", PROFILE_COLUMNS),
                    [
                        (*p[:13], _sqlite_time(p[13]), _sqlite_time(p[14]), p[15])
                        for p in b.profiles
                    ],
                )
                conn.executemany(_insert_sql("supplier_category", CATEGORY_COLUMNS), b.categories)
                bar.update(len(b.profiles))
        conn.execute("COMMIT")
        # Merge the FTS segments the inserts left behind, as routine maintenance would.
        conn.execute("INSERT INTO supplier_search(supplier_search) VALUES ('optimize')")
        conn.execute("ANALYZE")
        # Fold the big WAL into the main file so the server's reads do not wade through it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def seed_postgres(url: str, count: int, seed: int) -> None:
    """COPY in one transaction; `search_vector` is a generated column and fills itself."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            with _progress(count, "postgres") as bar:
                for b in batches(count, seed):
                    await conn.copy_records_to_table(
                        "company", records=b.companies, columns=COMPANY_COLUMNS
                    )
                    await conn.copy_records_to_table(
                        "supplier_profile", records=b.profiles, columns=PROFILE_COLUMNS
                    )
                    await conn.copy_records_to_table(
                        "supplier_category", records=b.categories, columns=CATEGORY_COLUMNS
                    )
                    bar.update(len(b.profiles))
            # Explicit ids bypassed the sequences; later inserts must not collide.
            for table in ("company", "supplier_profile"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
        # VACUUM as well as ANALYZE: sets the visibility map and flushes the GIN pending
        # list, the state autovacuum keeps a live database in.
        for table in ("company", "supplier_profile", "supplier_category"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
