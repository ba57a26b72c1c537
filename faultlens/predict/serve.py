"""Run the guard app with uvicorn on 127.0.0.1: blocking (`serve`, for the CLI) or in a
background thread on a free port (`serve_in_thread`, for tests and the load benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from faultlens.errors import FaultlensError

HOST = "127.0.0.1"  # never another interface: the guard has no authentication


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _config(app, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(app, host=HOST, port=port, log_level=log_level, access_log=False, lifespan="off")


def serve(app, port: int = 8008, log_level: str = "info") -> None:
    """Serve until interrupted."""
    if not 0 < port < 65536:
        raise FaultlensError(f"Port {port} is not valid; pick one between 1 and 65535.")
    uvicorn.Server(_config(app, port, log_level)).run()


@contextmanager
def serve_in_thread(app, port: int | None = None, log_level: str = "warning", startup_s: float = 60.0) -> Iterator[str]:
    """Start the server in a daemon thread; yield its base URL; stop it on exit."""
    port = port or free_port()
    server = uvicorn.Server(_config(app, port, log_level))
    thread = threading.Thread(target=server.run, daemon=True, name=f"guard-{port}")
    thread.start()
    deadline = time.monotonic() + startup_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise FaultlensError(f"The guard server did not start on {HOST}:{port}.")
        time.sleep(0.02)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
