"""Piccolo configuration: `DATABASE_URL=postgres://…` for PostgreSQL, else the SQLite file."""

import os

from piccolo.conf.apps import AppRegistry

from models.db import make_engine

DB = make_engine(os.environ.get("DATABASE_URL"))

APP_REGISTRY = AppRegistry(apps=["models.piccolo_app"])
