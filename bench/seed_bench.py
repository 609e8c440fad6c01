"""Bench fixtures for a Backchannel database, used by ``run_bench.py``.

    seed_bench.py seed [--users 64] [--extra-users N --extra-prefix P]
                                      register the bench client, users bench-user-0..N-1
                                      (and P0..PN-1), print {"client_id", "client_secret"}
    seed_bench.py add-pending CLIENT_ID --count N [--expires-in S]
                                      insert N pending poll requests for the bench users in
                                      bulk (SQL, no HTTP), print {"inserted", "seconds"}
    seed_bench.py sweep               make every pending request overdue, run the expiry
                                      sweeper until nothing is left, print the pass timings
    seed_bench.py create-db URL       create the (empty) PostgreSQL database named in URL
    seed_bench.py drop-db URL         drop it again

``seed`` reads the usual BACKCHANNEL_* settings from the environment, so it writes into
the database the bench server will use. Run it with the repository's virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from urllib.parse import urlsplit, urlunsplit

from backchannel.cli.common import open_provider
from backchannel.protocol.model import DeliveryMode
from backchannel.protocol.provider import Provider
from backchannel.protocol.registration import (
    client_from_metadata,
    generate_client_id,
    generate_client_secret,
    hash_client_secret,
)
from backchannel.protocol.users import new_user
from backchannel.settings import load_settings

_DB_NAME = re.compile(r"^bench_[a-z0-9_]{1,40}$")


async def seed(user_count: int, extra_users: int = 0, extra_prefix: str = "") -> dict[str, str]:
    settings = load_settings()
    async with open_provider(settings) as provider:
        credentials = await _add_client(provider)
        await _add_users(provider, user_count)
        await _add_users(provider, extra_users, extra_prefix)
    return credentials


async def _add_client(provider: Provider) -> dict[str, str]:
    """A poll-mode client_secret_basic client with a generated (fast-hashed) secret, the
    same path ``backchannel clients add`` takes."""
    client = client_from_metadata(
        {
            "client_id": generate_client_id(provider.random),
            "client_name": "bench",
            "token_endpoint_auth_method": "client_secret_basic",
            "backchannel_token_delivery_mode": DeliveryMode.POLL.value,
            "scope": "openid",
        },
        dev_mode=provider.settings.dev_mode,
        now=provider.clock.now(),
    )
    secret = generate_client_secret(provider.random)
    client.secret_hash = hash_client_secret(provider.hasher, secret, generated=True)
    await provider.storage.clients.add_client(client)
    return {"client_id": client.client_id, "client_secret": secret}


async def _add_users(provider: Provider, count: int, prefix: str = "bench-user-") -> None:
    now = provider.clock.now()
    for index in range(count):
        user = new_user(provider.random, provider.hasher, now, username=f"{prefix}{index}")
        await provider.storage.users.add_user(user)


def _split_database(url: str) -> tuple[str, str]:
    """(admin DSN on the ``postgres`` database, name of the bench database)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    name = parts.path.lstrip("/")
    if not _DB_NAME.match(name):
        raise SystemExit(f"refusing database name {name!r}: bench databases are bench_<id>")
    return urlunsplit(parts._replace(path="/postgres")), name


async def create_database(url: str) -> None:
    import asyncpg

    admin, name = _split_database(url)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(url: str) -> None:
    import asyncpg

    admin, name = _split_database(url)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seed_cmd = commands.add_parser("seed", help="register the bench client and users")
    seed_cmd.add_argument("--users", type=int, default=64)
    seed_cmd.add_argument("--extra-users", type=int, default=0)
    seed_cmd.add_argument("--extra-prefix", default="pending-user-")
    pending_cmd = commands.add_parser("add-pending", help="bulk-insert pending requests")
    pending_cmd.add_argument("client_id")
    pending_cmd.add_argument("--count", type=int, default=100_000)
    pending_cmd.add_argument("--users", type=int, default=64)
    pending_cmd.add_argument("--expires-in", type=float, default=3600.0)
    commands.add_parser("sweep", help="expire every pending request, time the sweeper")
    for name in ("create-db", "drop-db"):
        commands.add_parser(name).add_argument("url")
    args = parser.parse_args(argv)
    if args.command == "seed":
        print(json.dumps(asyncio.run(seed(args.users, args.extra_users, args.extra_prefix))))
    elif args.command == "add-pending":
        from seed_pending import add_pending

        inserted = add_pending(args.client_id, args.count, args.users, args.expires_in)
        print(json.dumps(asyncio.run(inserted)))
    elif args.command == "sweep":
        from seed_pending import time_sweeps

        print(json.dumps(asyncio.run(time_sweeps())))
    elif args.command == "create-db":
        asyncio.run(create_database(args.url))
    else:
        asyncio.run(drop_database(args.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
