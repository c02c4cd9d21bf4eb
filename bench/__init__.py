"""Benchmarks that drive a real gateway process over HTTP: `python -m bench --help`."""
