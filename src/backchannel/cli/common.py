"""What every CLI command shares: loading settings, opening the provider, printing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from backchannel.protocol.provider import Provider
from backchannel.settings import ConfigurationError, Settings, load_settings

T = TypeVar("T")
console = Console()
errors = Console(stderr=True)


def settings_from(ctx: typer.Context) -> Settings:
    """Settings for this invocation (``--config`` on the root command, or the defaults)."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    cached = obj.get("settings")
    if isinstance(cached, Settings):
        return cached
    try:
        settings = load_settings(obj.get("config"))
    except ConfigurationError as exc:
        fail(str(exc))
    obj["settings"] = settings
    return settings


def fail(message: str, code: int = 2) -> NoReturn:
    # The message is plain text (it may quote user input such as "[x]"); never wrap it.
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def open_provider(settings: Settings) -> AsyncIterator[Provider]:
    """A provider on the configured database, migrated first when it is embedded SQLite."""
    from backchannel.app import build_provider
    from backchannel.storage.migrate import upgrade_if_embedded

    await upgrade_if_embedded(settings.database)
    provider = await build_provider(settings)
    try:
        yield provider
    finally:
        await provider.events.close()
        await provider.storage.close()
