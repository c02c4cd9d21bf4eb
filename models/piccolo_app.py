"""Piccolo app: registers the tables so `piccolo migrations new models --auto` sees them."""

import os

from piccolo.conf.apps import AppConfig

from models.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="models",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "migrations"),
    table_classes=ALL_TABLES,
)
