"""The process: settings, Starlette app, auth, CLI."""
