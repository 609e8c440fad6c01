"""A real HTTP receiver on a loopback port: records every call, answers as scripted.

It runs uvicorn in a background thread with its own event loop, so it serves sync tests,
async tests and server subprocesses alike, and it outlives the processes that call it::

    from tests.support.receiver import Reply, running_receiver

    with running_receiver() as receiver:
        receiver.on("/cb", Reply(500), Reply(500), Reply(204))   # the last reply repeats
        receiver.on("/moved", Reply.redirect(receiver.url("/elsewhere")))
        receiver.on("/slow", Reply(200, delay=2.0))
        receiver.on("/jwks", Reply.json({"keys": [...]}))
        url = receiver.url("/cb")          # http://127.0.0.1:<port>/cb
        ...                                # make the code under test call it
        calls = await receiver.wait_calls(3, path="/cb")   # or receiver.wait_calls_sync(3)
        assert calls[0].headers["authorization"] == "Bearer ..."
        assert calls[0].json() == {"auth_req_id": "..."}

Paths without a script answer ``204`` with an empty body. A call is recorded when it
arrives, before any scripted delay. ``receiver.calls`` is a snapshot list of ``Call``.
Plain http on loopback: use it with ``dev_mode=True`` settings (the outbound policy allows
http only for loopback hosts in dev mode).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn

Scope = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the receiver saw it. Header names are lower case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """A programmed response: status, headers, body, and seconds to wait before answering."""

    status: int = 204
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, data: Any, status: int = 200, delay: float = 0.0) -> Reply:
        body = json.dumps(data).encode()
        return cls(status, body, {"content-type": "application/json"}, delay)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, b"", {"location": location})


class Receiver:
    """The ASGI app plus its recorded calls and scripts (thread-safe)."""

    def __init__(self, port: int, scheme: str = "http") -> None:
        self.port = port
        self.scheme = scheme
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._scripts: dict[str, list[Reply]] = {}

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def on(self, path: str, *replies: Reply) -> None:
        """Answer calls to ``path`` with ``replies`` in order; the last one then repeats."""
        if not replies:
            raise ValueError("give at least one reply")
        with self._lock:
            self._scripts[path] = list(replies)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    async def wait_calls(
        self, count: int, *, path: str | None = None, timeout: float = 10.0
    ) -> list[Call]:
        """At least ``count`` calls (to ``path`` if given), waiting up to ``timeout`` s."""
        with anyio.fail_after(timeout):
            while len(calls := self._matching(path)) < count:
                await anyio.sleep(0.01)
        return calls

    def wait_calls_sync(
        self, count: int, *, path: str | None = None, timeout: float = 10.0
    ) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(calls := self._matching(path)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(calls)} of {count} calls within {timeout} s")
            time.sleep(0.01)
        return calls

    def _matching(self, path: str | None) -> list[Call]:
        return self.calls if path is None else self.calls_to(path)

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            script = self._scripts.get(path)
            if not script:
                return Reply()
            return script.pop(0) if len(script) > 1 else script[0]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        call = Call(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._calls.append(call)
        reply = self._next_reply(call.path)
        if reply.delay and not await _delayed(reply.delay):
            return
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


async def _delayed(seconds: float) -> bool:
    """Sleep; False when the receiver is shutting down meanwhile (no reply then)."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        return False
    return True


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


@contextmanager
def running_receiver(
    *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> Iterator[Receiver]:
    """A started receiver on a free loopback port, stopped when the block ends. With a
    certificate and key (PEM files) it speaks https."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    receiver = Receiver(sock.getsockname()[1], "https" if ssl_certfile else "http")
    config = uvicorn.Config(
        receiver,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_started(server, thread)
        yield receiver
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the receiver did not start")
        time.sleep(0.01)
