"""Request ids the server makes up (``web.middleware``): unique per process and across
forked workers, 16 hex characters, no system call per request."""

from __future__ import annotations

import os
import re

from backchannel.web import middleware
from backchannel.web.middleware import _RequestIds

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def test_ids_are_16_hex_characters_and_never_repeat_in_a_process() -> None:
    ids = _RequestIds()
    drawn = [ids() for _ in range(100_000)]
    assert all(HEX16.match(i) for i in drawn)
    assert len(set(drawn)) == len(drawn)


def test_a_forked_worker_draws_its_own_prefix() -> None:
    parent = middleware._new_request_id()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        os.write(write, middleware._new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert HEX16.match(from_child)
    assert from_child[:8] != parent[:8]


def test_the_counter_starts_over_with_a_new_prefix_past_32_bits() -> None:
    ids = _RequestIds()
    first = ids()
    ids._count = iter([0x1_0000_0000, *range(5)])  # the counter's next value is past 32 bits
    after = ids()
    assert HEX16.match(after)
    assert after[:8] != first[:8]
