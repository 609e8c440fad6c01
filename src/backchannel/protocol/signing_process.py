"""RSA signatures in a child process beside the event loop.

An RSA-2048 signature is a third of a millisecond of OpenSSL, about as much CPU as the
rest of a token request. It used to run on a signing thread: OpenSSL releases the GIL,
so the loop went on serving meanwhile. But the thread needs the GIL before and after each
signature, and every time it takes it the busy loop stops, drops it and waits to get it
back: futex calls, context switches, cold caches. Measured on the poll flow (C=64, one
worker) that hand-over cost about 0.3 ms of CPU per flow, as much as the signature itself.
A child process shares no GIL: the loop writes the signing input to a socket, the child
signs and writes the signature back, and the loop reads it with the next turn's I/O.

One child per serving process, started by the first RSA job. It knows only what it is sent:
each signing key once, as its private JWK over the socket pair (never through the command
line or the environment), before the first job that uses it. If the child cannot be started
or goes away, its pending jobs and every job until the next start (one attempt per second)
are signed inline, so a token request never fails for it. The child ends when its socket
closes, that is when the process that started it exits.

Wire format, big-endian. Parent to child: kind (``K`` key, ``S`` sign), job id (u32),
length (u32), body; a ``K`` body is JSON ``[kid, alg, private JWK]``, an ``S`` body is the
kid's length (u8), the kid and the JWS signing input. Child to parent: job id (u32), ok
(u8), length (u32), the signature (or, when not ok, the error's text); the child's first
frame, job 0 and empty, says that it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog

from backchannel.protocol.jose import JoseError, Signer

_TO_CHILD = struct.Struct("!cII")
_FROM_CHILD = struct.Struct("!IBI")
_INSTALL_KEY = b"K"
_SIGN = b"S"
_RESTART_AFTER_S = 1.0
_OURS = "BACKCHANNEL_"
_HELLO = 0  # the job id of the child's first frame: imports done, ready for jobs

log = structlog.get_logger(__name__)

SigningJob = tuple[Signer, dict[str, Any], str]


class SigningProcess:
    """The parent's end: jobs out, signatures back, futures settled by job id."""

    def __init__(
        self, command: Sequence[str] | None = None, restart_after_s: float = _RESTART_AFTER_S
    ) -> None:
        self._command = list(command or (sys.executable, "-m", __name__))
        self._restart_after_s = restart_after_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._child: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[bool] | None = None  # True once the child said hello
        self._pending: dict[int, tuple[asyncio.Future[bytes], Signer, bytes]] = {}
        self._installed: set[str] = set()
        self._last_id = 0
        self._next_start = 0.0

    async def sign_all(self, jobs: Sequence[SigningJob]) -> list[str]:
        """Each (signer, claims, typ) as a compact JWS, in order; RSA and RSA-PSS in the
        child, the rest (cheaper than the round trip) here. A batch without an RSA job
        starts no child. While the child is starting (its imports take a fifth of a
        second) everything is signed here."""
        inputs = [signer.signing_input(claims, typ) for signer, claims, typ in jobs]
        waits: list[asyncio.Future[bytes] | None] = [None] * len(jobs)
        if any(signer.costly for signer, _, _ in jobs) and self._available():
            for index, (signer, _, _) in enumerate(jobs):
                if signer.costly:
                    waits[index] = self._send(signer, inputs[index])
        tokens = []
        for (signer, _, _), signing_input, wait in zip(jobs, inputs, waits, strict=True):
            signature = signer.raw_signature(signing_input) if wait is None else await wait
            tokens.append(Signer.finish(signing_input, signature))
        return tokens

    async def started(self) -> bool:
        """Start the child unless it runs; True once it is ready for jobs."""
        self._available()
        if self._starting is not None:
            await self._starting
        return self._ready is not None and await self._ready

    @property
    def child_pid(self) -> int | None:
        """The child's process id while it takes jobs."""
        return self._child.pid if self._child is not None and self._is_ready() else None

    async def aclose(self) -> None:
        """Close the socket; the child, reading its end, exits."""
        child, transport = self._child, self._transport
        self._child = self._transport = self._ready = None
        if transport is not None:
            transport.close()
        if child is not None:
            await child.wait()

    def _is_ready(self) -> bool:
        ready = self._ready
        return ready is not None and ready.done() and ready.result()

    def _available(self) -> bool:
        """Ready for jobs; if not, and none is starting, start a child (once a second)."""
        if self._is_ready():
            return True
        idle = self._starting is None and self._transport is None
        if idle and time.monotonic() >= self._next_start:
            self._starting = asyncio.get_running_loop().create_task(self._start())
        return False

    async def _start(self) -> None:
        self._next_start = time.monotonic() + self._restart_after_s
        self._installed.clear()
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        parent, child = socket.socketpair()
        try:
            self._child = await asyncio.create_subprocess_exec(
                *self._command, str(child.fileno()),
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=_child_environment(),
            )  # fmt: skip
            self._transport, _ = await loop.create_unix_connection(
                lambda: _ParentProtocol(self), sock=parent
            )
        except OSError as error:
            parent.close()
            self._ready.set_result(False)
            log.warning("signing_process_unavailable", error=str(error))
        finally:
            child.close()
            self._starting = None

    def _send(self, signer: Signer, signing_input: bytes) -> asyncio.Future[bytes]:
        assert self._transport is not None
        if signer.kid not in self._installed:
            key = orjson.dumps([signer.kid, signer.alg, signer.private_jwk])
            self._transport.write(_TO_CHILD.pack(_INSTALL_KEY, 0, len(key)) + key)
            self._installed.add(signer.kid)
        self._last_id = job = self._last_id % 0xFFFFFFFF + 1  # 0 is the child's hello
        kid = signer.kid.encode()
        body = bytes((len(kid),)) + kid + signing_input
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[job] = (future, signer, signing_input)
        self._transport.write(_TO_CHILD.pack(_SIGN, job, len(body)) + body)
        return future

    def _settle(self, job: int, ok: bool, payload: bytes) -> None:
        if job == _HELLO:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(True)
            return
        entry = self._pending.pop(job, None)
        if entry is None:
            return
        future, signer, signing_input = entry
        if future.done():  # the caller was cancelled meanwhile
            return
        if not ok:
            log.warning("signing_process_refused_a_job", error=payload.decode(errors="replace"))
            _settle_inline(future, signer, signing_input)
        else:
            future.set_result(payload)

    def _lost(self) -> None:
        """The child went away: what it still owed is signed here."""
        self._transport = None
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(False)
        self._ready = None
        if self._child is not None:
            log.warning("signing_process_lost", exit_code=self._child.returncode)
            self._child = None
        pending, self._pending = self._pending, {}
        for future, signer, signing_input in pending.values():
            if not future.done():
                _settle_inline(future, signer, signing_input)


def _child_environment() -> dict[str, str]:
    """The server's environment without its own settings (the master secret among them):
    the child needs only the interpreter's."""
    return {name: value for name, value in os.environ.items() if not name.startswith(_OURS)}


def _settle_inline(future: asyncio.Future[bytes], signer: Signer, signing_input: bytes) -> None:
    try:
        future.set_result(signer.raw_signature(signing_input))
    except (JoseError, ValueError, TypeError) as error:
        future.set_exception(error)


class _ParentProtocol(asyncio.Protocol):
    def __init__(self, owner: SigningProcess) -> None:
        self._owner = owner
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        start = 0
        while len(buffer) - start >= _FROM_CHILD.size:
            job, ok, length = _FROM_CHILD.unpack_from(buffer, start)
            end = start + _FROM_CHILD.size + length
            if len(buffer) < end:
                break
            self._owner._settle(job, ok == 1, buffer[start + _FROM_CHILD.size : end])
            start = end
        self._buffer = buffer[start:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._lost()


_process: SigningProcess | None = None


def signing_process() -> SigningProcess:
    """The signing process of this process's running event loop (started by its first job;
    a socket belongs to one loop, so a new loop gets a new child and the old one's child
    exits when that loop's socket is closed)."""
    global _process
    loop = asyncio.get_running_loop()
    if _process is None or _process.loop is not loop:
        _process = SigningProcess()
        _process.loop = loop
    return _process


def _forget_signing_process() -> None:
    global _process
    _process = None  # a forked child starts its own: the socket's other end is the parent's


os.register_at_fork(after_in_child=_forget_signing_process)


# --------------------------------------------------------------------------- the child


def serve(fd: int) -> None:
    """Sign what arrives on the socket ``fd`` until it closes."""
    with contextlib.suppress(ConnectionError):  # the parent went away mid-frame
        _serve(socket.socket(fileno=fd))


def _serve(connection: socket.socket) -> None:
    connection.sendall(_FROM_CHILD.pack(_HELLO, 1, 0))
    incoming = connection.makefile("rb")
    signers: dict[bytes, Signer] = {}
    while True:
        head = incoming.read(_TO_CHILD.size)
        if len(head) < _TO_CHILD.size:
            return
        kind, job, length = _TO_CHILD.unpack(head)
        body = incoming.read(length)
        if kind == _INSTALL_KEY:
            kid, alg, private = orjson.loads(body)
            with contextlib.suppress(JoseError):  # its jobs are then refused, signed inline
                signers[kid.encode()] = Signer(private, alg)
            continue
        connection.sendall(_answer(signers, job, body))


def _answer(signers: dict[bytes, Signer], job: int, body: bytes) -> bytes:
    kid_end = 1 + body[0]
    signer = signers.get(body[1:kid_end])
    try:
        if signer is None:
            raise JoseError("no such key was sent")
        signature = signer.raw_signature(body[kid_end:])
    except (JoseError, ValueError, TypeError) as error:
        text = str(error).encode()
        return _FROM_CHILD.pack(job, 0, len(text)) + text
    return _FROM_CHILD.pack(job, 1, len(signature)) + signature


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server; EOF ends us
    serve(int(sys.argv[1]))
