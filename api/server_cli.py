"""`kernelwright serve`, `kernelwright keys ...` and `kernelwright db ...`: the service's command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.db.engine import Database
from api.services import keys as key_store
from api.services.migrations import current_revision, head_revision, upgrade
from kernelwright.errors import KernelwrightError
from kernelwright.logs import configure_logging
from kernelwright.settings import Settings

__all__ = ["db_app", "keys_app", "serve"]

keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys of the REST service.")
db_app = typer.Typer(no_args_is_help=True, help="The service database: migrations.")

console = Console(stderr=True)
out = Console(soft_wrap=True)

HomeOpt = Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")]
UrlOpt = Annotated[
    str | None, typer.Option("--database-url", help="sqlite:///PATH or postgresql://... (default: settings)")
]


def _settings(home: Path | None, database_url: str | None = None) -> Settings:
    settings = Settings() if home is None else Settings(home=home)
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (settings: KERNELWRIGHT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (settings: KERNELWRIGHT_PORT)")] = None,
    home: HomeOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Run the REST service (OpenAPI docs at /docs). Unfinished jobs and sessions resume on start."""
    import uvicorn

    from api.app import create_app

    settings = _settings(home, database_url)
    if settings.log_level.upper() == "WARNING":
        configure_logging("INFO", settings.log_format)  # a server should log its requests
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,  # our request log carries key and job ids
        timeout_graceful_shutdown=10,
    )


async def _with_db(settings: Settings) -> Database:
    await asyncio.to_thread(upgrade, settings.service_database_url)
    return Database(settings.service_database_url)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="who or what the key is for")],
    rate_limit: Annotated[int | None, typer.Option(help="requests a minute (default: settings)")] = None,
    spend_cap: Annotated[float | None, typer.Option(help="LLM cost cap in USD (default: settings)")] = None,
    home: HomeOpt = None,
    database_url: UrlOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Create a key and print its token once (only a hash of it is stored)."""
    settings = _settings(home, database_url)

    async def run() -> key_store.NewKey:
        db = await _with_db(settings)
        try:
            return await key_store.create_key(
                db, name, rate_limit_per_minute=rate_limit, spend_cap_usd=spend_cap
            )
        finally:
            await db.dispose()

    new = asyncio.run(run())
    if fmt == "json":
        out.print_json(json.dumps({"id": new.record.id, "name": name, "token": new.token}))
    else:
        console.print(f"key {new.record.id} ({name}) created; store this token now, it is not shown again:")
        out.print(new.token)


@keys_app.command("list")
def keys_list(
    home: HomeOpt = None,
    database_url: UrlOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """List keys: id, name, state, limits and spend (never the tokens)."""
    settings = _settings(home, database_url)

    async def run() -> list[key_store.KeyRecord]:
        db = await _with_db(settings)
        try:
            return await key_store.list_keys(db)
        finally:
            await db.dispose()

    records = asyncio.run(run())
    if fmt == "json":
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "created_at": k.created_at.isoformat(),
                "revoked": k.revoked_at is not None,
                "rate_limit_per_minute": k.rate_limit_per_minute or settings.rate_limit_per_minute,
                "spend_cap_usd": k.spend_cap_usd if k.spend_cap_usd is not None else settings.spend_cap_usd,
                "spent_usd": k.spent_usd,
                "tokens_used": k.tokens_used,
            }
            for k in records
        ]
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "name", "created", "state", "rate/min", "cap $", "spent $", "tokens")
    for k in records:
        table.add_row(
            k.id,
            k.name,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            "revoked" if k.revoked_at else "active",
            str(k.rate_limit_per_minute or settings.rate_limit_per_minute),
            f"{k.spend_cap_usd if k.spend_cap_usd is not None else settings.spend_cap_usd:.2f}",
            f"{k.spent_usd:.4f}",
            str(k.tokens_used),
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (see keys list)")],
    home: HomeOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    settings = _settings(home, database_url)

    async def run() -> bool:
        db = await _with_db(settings)
        try:
            return await key_store.revoke_key(db, key_id)
        finally:
            await db.dispose()

    if not asyncio.run(run()):
        console.print(f"[red]error:[/] no key {key_id!r}; see kernelwright keys list")
        raise typer.Exit(2)
    console.print(f"key {key_id} revoked")


@db_app.command("upgrade")
def db_upgrade(home: HomeOpt = None, database_url: UrlOpt = None) -> None:
    """Apply the migrations (the server also does this when it starts)."""
    settings = _settings(home, database_url)
    try:
        upgrade(settings.service_database_url)
    except KernelwrightError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"database at {', '.join(sorted(current_revision(settings.service_database_url)))}")


@db_app.command("current")
def db_current(home: HomeOpt = None, database_url: UrlOpt = None) -> None:
    """Print the database's revision and the migrations' head."""
    settings = _settings(home, database_url)
    url = settings.service_database_url
    out.print_json(json.dumps({"current": sorted(current_revision(url)), "head": sorted(head_revision(url))}))
