"""One typed settings object, read from ``LSTMQ_*`` environment variables.

Unset URLs fall back to the *embedded setup*: a SQLite file and kombu's filesystem broker
under one local data folder (``LSTMQ_HOME``, default ``./.lstmq``), so the main job runs with
no servers. Malformed values are refused at start-up with one line, password masked.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lstmq.durations import parse_duration
from lstmq.errors import ConfigError, InputError

BROKER_SCHEMES = ("redis", "rediss", "filesystem", "amqp", "pyamqp")
EMBEDDED_BROKER_URL = "filesystem://localhost/"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
SHIPPED_MODEL_DIR = Path(__file__).parent / "models"
SAMPLES_DIR = Path(__file__).parent / "samples"  # small inputs for the demo and the benches

# Defaults, each with its unit.
DEFAULT_VISIBILITY_TIMEOUT_S = 4 * 3600  # above the longest batch; see DESIGN pitfalls
DEFAULT_BATCH_DOCS = 256
# A job with pending documents and no progress for this long, while a worker for its queue
# is idle and none holds its batches, is stalled: the reconciler sends its documents again.
DEFAULT_STALL_AFTER_S = 60


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSTMQ_", extra="ignore")

    home: Path = Path(".lstmq")
    broker_url: str | None = None
    database_url: str | None = None
    image_dir: Path | None = None
    model_dir: Path | None = None
    visibility_timeout_s: int = DEFAULT_VISIBILITY_TIMEOUT_S
    batch_size: int = DEFAULT_BATCH_DOCS
    stall_after_s: int = DEFAULT_STALL_AFTER_S
    # Folders (separated by ":") that scheduled corpora may read; unset: anywhere.
    corpus_roots: str | None = None
    # How long a job is kept after it last changed (e.g. 90d); unset: forever. Workers prune daily.
    retain: str | None = None
    # Webhooks: the HMAC-SHA256 key of their signatures (never printed), and whether receivers
    # may be private, loopback or link-local addresses (for a receiver on the same network).
    webhook_secret: SecretStr | None = None
    webhook_allow_private: bool = False

    @field_validator("broker_url", "database_url", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("broker_url")
    @classmethod
    def _check_broker(cls, value: str | None) -> str | None:
        if value is not None:
            _check_scheme("LSTMQ_BROKER_URL", value, BROKER_SCHEMES)
            if value.startswith("filesystem:") and value.rstrip("/") not in ("filesystem:", "filesystem://localhost"):
                raise ValueError(
                    f"LSTMQ_BROKER_URL={value}: the embedded broker keeps its messages under LSTMQ_HOME/broker; "
                    "set filesystem:// (or leave it unset), or LSTMQ_HOME for another folder"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database(cls, value: str | None) -> str | None:
        if value is not None:
            _check_scheme("LSTMQ_DATABASE_URL", value, DATABASE_SCHEMES)
        return value

    @field_validator("retain", mode="before")
    @classmethod
    def _check_retain(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str):
            try:
                parse_duration(value, "LSTMQ_RETAIN")
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("visibility_timeout_s", "batch_size", "stall_after_s")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive integer")
        return value

    # Resolved values: what the rest of the code uses.
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def embedded_broker(self) -> bool:
        """Unset, or set to ``filesystem://``: either way the broker folder under LSTMQ_HOME."""
        return self.broker_url is None or self.broker_url.startswith("filesystem:")

    @property
    def broker(self) -> str:
        # With the host spelled out: kombu warns on every connection when it is missing.
        return EMBEDDED_BROKER_URL if self.embedded_broker else self.broker_url

    @property
    def broker_dir(self) -> Path:
        """Folder of the embedded filesystem broker (messages are files)."""
        return self.home_dir / "broker"

    @property
    def database(self) -> str:
        if self.database_url is None:
            return f"sqlite:///{self.home_dir / 'lstmq.db'}"
        if self.database_url.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; SQLAlchemy's bare scheme means psycopg2.
            return "postgresql+psycopg://" + self.database_url[len("postgresql://") :]
        return self.database_url

    @property
    def heartbeat_s(self) -> int:
        """How often a worker records itself and looks for stalled jobs: a few times per stall."""
        return max(1, min(15, self.stall_after_s // 4))

    @property
    def retention(self) -> timedelta | None:
        """``LSTMQ_RETAIN`` as a duration; None keeps every job."""
        return parse_duration(self.retain, "LSTMQ_RETAIN") if self.retain else None

    @property
    def images(self) -> Path:
        return (self.image_dir or self.home_dir / "images").expanduser().resolve()

    @property
    def user_model_dir(self) -> Path:
        """Where ``lstmq train`` writes models; searched before the shipped ones."""
        return (self.model_dir or self.home_dir / "models").expanduser().resolve()

    @property
    def model_search_path(self) -> list[Path]:
        return [self.user_model_dir, SHIPPED_MODEL_DIR]


def _check_scheme(name: str, url: str, allowed: tuple[str, ...]) -> None:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in allowed:
        raise ValueError(
            f"{name}={mask_url(url)!s} has scheme {scheme or '(none)'!r}; expected one of {', '.join(allowed)}"
        )


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into one ConfigError line."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "LSTMQ_" + str(first["loc"][0]).upper() if first.get("loc") else "LSTMQ_*"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(message if message.startswith("LSTMQ_") else f"{field}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return load_settings()
