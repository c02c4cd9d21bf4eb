"""A real gateway process whose output goes to a file, not a pipe: with info-level logs a
pipe nobody reads fills up and stalls the server; a file can be read at any moment."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.api import CLI, ROOT, Server, free_port


def start_logged_server(env: dict[str, str], log: Path) -> Server:
    port = free_port()
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [CLI, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
    return Server(process, port)
