"""HTTP clients for tests: in-process ASGI, uvicorn in-process on loopback, and a real server
in a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from backchannel.app import compose
from backchannel.protocol.provider import Provider
from backchannel.web.uvicorn_http import CoalescingHttpToolsProtocol

CLI = [sys.executable, "-c", "from backchannel.cli.main import main; main()"]


def asgi_client(provider: Provider) -> httpx.AsyncClient:
    app = compose(provider.settings, provider=provider)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=provider.issuer)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(var_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment for a `backchannel` process on its own SQLite file and port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHANNEL_")}
    env.update(
        BACKCHANNEL_DEV_MODE="true",
        BACKCHANNEL_ISSUER=f"http://127.0.0.1:{port}",
        BACKCHANNEL_SERVER__PORT=str(port),
        BACKCHANNEL_DATABASE__URL=f"sqlite+aiosqlite:///{var_dir}/backchannel.db",
        BACKCHANNEL_KEYS__MASTER_SECRET_FILE=str(var_dir / "master.key"),
        BACKCHANNEL_KEYS__ALGORITHMS='["RS256", "ES256"]',
    )
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=input, capture_output=True, text=True, timeout=120
    )


@contextmanager
def running_server(
    env: dict[str, str], *args: str, timeout: float = 60
) -> Iterator[subprocess.Popen[str]]:
    """`backchannel serve` in a subprocess, ready (healthz answers) when the block starts."""
    port = env["BACKCHANNEL_SERVER__PORT"]
    log_path = Path(env["BACKCHANNEL_KEYS__MASTER_SECRET_FILE"]).parent / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*CLI, "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            _wait_ready(f"http://127.0.0.1:{port}/healthz", process, timeout)
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@asynccontextmanager
async def serving_in_process(app: ASGIApp) -> AsyncIterator[uvicorn.Server]:
    """``app`` behind uvicorn with ``backchannel serve``'s protocol, on a free loopback port
    (``server.config.port``), in this event loop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), http=CoalescingHttpToolsProtocol,
        log_level="warning", lifespan="off", server_header=False, proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a content-length: its head and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.startswith(b"content-length")
    )
    return head, await reader.readexactly(length)
