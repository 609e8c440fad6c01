"""RSA signatures in a child process (``protocol/signing_process.py``): the same tokens as
inline signing, and nothing lost when the child is missing or goes away."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from backchannel.protocol import signing_process as signing
from backchannel.protocol.jose import Signer, generate_private_jwk
from backchannel.protocol.signing_process import SigningProcess


def signer(alg: str) -> Signer:
    return Signer(generate_private_jwk(alg, f"kid-{alg}"), alg)


@pytest.fixture(scope="module")
def rs256() -> Signer:
    return signer("RS256")


def child_command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def wait_until_gone(pid: int) -> None:
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return  # exited; its parent has not collected it yet
        await asyncio.sleep(0.01)
    raise AssertionError(f"process {pid} still runs")


@pytest.mark.anyio
async def test_rsa_tokens_from_the_child_equal_the_inline_ones(
    rs256: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RS256 (PKCS#1 v1.5) is deterministic: the child's token is the inline token. The
    child gets none of the server's own settings (the master secret among them)."""
    monkeypatch.setenv("BACKCHANNEL_KEYS__MASTER_SECRET", "s" * 40)
    process = SigningProcess()
    assert await process.started()
    pid = process.child_pid
    assert pid is not None and pid != os.getpid()
    assert "backchannel.protocol.signing_process" in child_command_line(pid)
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [v for v in environment if v.startswith(b"BACKCHANNEL_")]
    assert any(v.startswith(b"PATH=") for v in environment)
    before = cpu_ticks(pid)
    claims = [{"sub": f"user-{n}", "iat": n} for n in range(200)]
    tokens = await asyncio.gather(*(process.sign_all([(rs256, c, "JWT")]) for c in claims))
    assert [token for (token,) in tokens] == [rs256.sign(c) for c in claims]
    assert cpu_ticks(pid) > before  # the child did the signing
    await process.aclose()
    await wait_until_gone(pid)


@pytest.mark.anyio
async def test_a_pair_keeps_its_order_and_ec_stays_here() -> None:
    es256, ps256 = signer("ES256"), signer("PS256")
    process = SigningProcess()
    (alone,) = await process.sign_all([(es256, {"a": 0}, "at+jwt")])
    assert alone.startswith(es256.signing_input({"a": 0}, "at+jwt").decode() + ".")
    await asyncio.sleep(0.05)
    assert process.child_pid is None and process._starting is None  # EC alone starts none
    assert await process.started()
    access, id_token = await process.sign_all(
        [(es256, {"a": 1}, "at+jwt"), (ps256, {"i": 2}, "JWT")]
    )
    assert access.split(".")[0] == es256.signing_input({}, "at+jwt").split(b".")[0].decode()
    assert id_token.startswith(ps256.signing_input({"i": 2}).decode() + ".")
    assert process.child_pid is not None
    await process.aclose()


@pytest.mark.anyio
async def test_jobs_the_child_owed_when_it_was_killed_are_signed_here(rs256: Signer) -> None:
    process = SigningProcess(restart_after_s=0)
    assert await process.started()
    first = process.child_pid
    assert first is not None
    claims = [{"sub": f"user-{n}"} for n in range(60)]
    jobs = [asyncio.ensure_future(process.sign_all([(rs256, c, "JWT")])) for c in claims]
    await asyncio.sleep(0)  # every job written to the socket
    os.kill(first, signal.SIGKILL)
    tokens = await asyncio.gather(*jobs)
    assert [token for (token,) in tokens] == [rs256.sign(c) for c in claims]
    assert await process.started()
    assert process.child_pid not in (None, first)
    (after,) = await process.sign_all([(rs256, {"sub": "after"}, "JWT")])
    assert after == rs256.sign({"sub": "after"})  # the new child was sent the key again
    await process.aclose()


@pytest.mark.anyio
async def test_without_a_child_every_job_is_signed_here(rs256: Signer) -> None:
    process = SigningProcess(command=[str(Path(sys.executable).parent / "no-such-python")])
    (token,) = await process.sign_all([(rs256, {"sub": "x"}, "JWT")])
    assert token == rs256.sign({"sub": "x"})
    assert not await process.started()
    assert process.child_pid is None


@pytest.mark.anyio
async def test_the_child_ignores_ctrl_c_and_a_cancelled_caller_gets_nothing(
    rs256: Signer,
) -> None:
    process = SigningProcess()
    assert await process.started()
    pid = process.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    cancelled = asyncio.ensure_future(process.sign_all([(rs256, {"sub": "gone"}, "JWT")]))
    await asyncio.sleep(0)
    cancelled.cancel()
    (token,) = await process.sign_all([(rs256, {"sub": "kept"}, "JWT")])
    assert token == rs256.sign({"sub": "kept"})
    assert cancelled.cancelled()
    assert process.child_pid == pid
    await process.aclose()


def test_the_child_refuses_a_job_for_a_key_it_was_not_sent(rs256: Signer) -> None:
    body = bytes((5,)) + b"other" + rs256.signing_input({})
    frame = signing._answer({b"kid-RS256": rs256}, 7, body)
    job, ok, length = signing._FROM_CHILD.unpack_from(frame)
    assert (job, ok, frame[signing._FROM_CHILD.size :]) == (7, 0, b"no such key was sent")
    assert length == len(b"no such key was sent")
    good = signing._answer({b"other": rs256}, 8, body)
    assert signing._FROM_CHILD.unpack_from(good)[:2] == (8, 1)
    assert good[signing._FROM_CHILD.size :] == rs256.raw_signature(rs256.signing_input({}))


@pytest.mark.anyio
async def test_one_signing_process_per_event_loop() -> None:
    assert signing.signing_process() is signing.signing_process()
    assert signing.signing_process().loop is asyncio.get_running_loop()
