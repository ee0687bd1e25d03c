"""The options that several ``lstmq bench`` commands take, defined once, and the checks that turn
an unusable database or broker into one ``error:`` line before a bench starts anything.

Each option is a decorator factory: a command picks the options that apply to it, with its own
default where the measurement needs one (``--docs``) or a different meaning of the default
(``--database-url`` of ``lstmq bench schedule`` is a throwaway SQLite file unless given).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from lstmq.db.engine import make_engine, ping
from lstmq.errors import ConfigError
from lstmq.queue import make_celery, ping_broker
from lstmq.readers.sources import resolve_sources
from lstmq.settings import BROKER_SCHEMES, DATABASE_SCHEMES, DEFAULT_BATCH_DOCS, Settings, mask_url
from lstmq.worker.cli import DEFAULT_CONCURRENCY

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
EMBEDDED_BROKER = "filesystem://"  # --redis-url for the embedded broker, in the bench's folder
DEVICES = ("auto", "cpu", "cuda")

Decorator = Callable[[Callable], Callable]


def _env_or(name: str, fallback: str | None) -> Callable[[], str | None]:
    return lambda: os.environ.get(name) or fallback


def _scheme(option: str, schemes: tuple[str, ...]):
    """A callback refusing a URL whose scheme lstmq cannot use, in one line."""

    def check(_ctx, _param, value: str | None) -> str | None:
        if value is None:
            return value
        if value.split("://", 1)[0] not in schemes:
            raise ConfigError(f"{option} {mask_url(value)}: expected a URL of scheme {', '.join(schemes)}")
        if value.startswith("filesystem:") and value != EMBEDDED_BROKER:  # its folder is the bench's own
            raise ConfigError(f"{option} {value}: the embedded broker is {EMBEDDED_BROKER}, with no path")
        return value

    return check


def database_url(
    help: str = "Database (schema upgraded; bench jobs deleted after).", default: str | None = DEFAULT_DATABASE
) -> Decorator:
    """``--database-url``: ``LSTMQ_DATABASE_URL`` when set, else ``default``."""
    return click.option(
        "--database-url",
        default=_env_or("LSTMQ_DATABASE_URL", default),
        show_default=default or False,  # None: the help says what it means
        callback=_scheme("--database-url", DATABASE_SCHEMES),
        help=help,
    )


def redis_url(
    help: str = f"Broker (no other worker should consume it meanwhile); {EMBEDDED_BROKER} for the embedded one.",
    default: str | None = DEFAULT_REDIS,
) -> Decorator:
    """``--redis-url``: ``LSTMQ_BROKER_URL`` when set, else ``default``."""
    return click.option(
        "--redis-url",
        default=_env_or("LSTMQ_BROKER_URL", default),
        show_default=default or False,
        callback=_scheme("--redis-url", BROKER_SCHEMES),
        help=help,
    )


def docs(default: int, help: str) -> Decorator:
    return click.option("--docs", "-n", type=click.IntRange(min=1), default=default, show_default=True, help=help)


def threads(help: str = "torch CPU threads, here and in the worker.") -> Decorator:
    return click.option("--threads", type=click.IntRange(min=1), help=help)


def device() -> Decorator:
    return click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)


def batch_size(help: str = "Documents per message.") -> Decorator:
    return click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=DEFAULT_BATCH_DOCS,
        show_default=True,
        help=help,
    )


def concurrency() -> Decorator:
    return click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="The worker's --concurrency (batches in flight, threads sharing one model).",
    )


def input_path(help: str) -> Decorator:
    # No click.Path(exists=True): a missing file is one `error:` line (check_input), as in `lstmq submit`.
    return click.option("--input", "input_path", help=help)


def check_input(path: str | None) -> Path | None:
    """The ``--input`` file, checked as ``lstmq submit`` checks its inputs (exists, known format)."""
    if path is None:
        return None
    resolve_sources([path])
    return Path(path)


def check_database(url: str) -> None:
    """One line naming the database when it cannot be used (server down, no such database,
    authentication refused), before the bench trains, loads or starts anything."""
    engine = make_engine(Settings(database_url=url).database)
    try:
        ping(engine)
    finally:
        engine.dispose()


def check_broker(url: str) -> None:
    """One line naming the broker when it cannot be reached (the embedded one always can)."""
    if url != EMBEDDED_BROKER:
        ping_broker(make_celery(Settings(broker_url=url)))


def check_services(database: str, broker: str) -> None:
    check_database(database)
    check_broker(broker)
