"""Every fixture of the suite: real services, isolated per test session, cleaned up afterwards;
plain helpers live in tests/support/.

Locally a missing service skips the tests that need it; in CI (CI=true) it fails them.
PostgreSQL: a fresh database per session. Redis: a database number claimed atomically, so
parallel test runs on one machine never share queues.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from lstmq.db.engine import engine_for, get_engine
from lstmq.db.migrate import upgrade
from lstmq.queue import make_celery
from lstmq.settings import get_settings
from tests.support.models import install_fake_model
from tests.support.postgres import empty_postgres
from tests.support.processes import LstmqProcess, worker_env

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("LSTMQ_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_HOST_URL = os.environ.get("LSTMQ_TEST_REDIS", "redis://127.0.0.1:6379")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"


def service_missing(what: str, why: object) -> None:
    message = f"{what} unavailable: {why}"
    if CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests run tiny models in-process: on a busy 2-core host a second OpenMP thread only adds
    spin-waiting (8x slower here). Acts where test modules loaded torch; never loads it itself."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    yield
    if torch:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, present in CI, absent on a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (only CI and developer machines have it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_url():
    """URL of a brand-new PostgreSQL database, dropped at the end of the session."""
    name = f"lstmq_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable PostgreSQL"
        admin.dispose()
        service_missing("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    engine_for.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url():
    """URL of a Redis database number claimed for this session, flushed before and after."""
    try:
        admin = redis.Redis.from_url(REDIS_HOST_URL + "/0", socket_timeout=3)
        admin.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable Redis"
        service_missing("Redis", exc)
    for number in range(15, 0, -1):
        if admin.set(f"lstmq-test-claim:{number}", os.getpid(), nx=True, ex=3 * 3600):
            break
    else:
        pytest.fail("no free Redis database number for tests")
    url = f"{REDIS_HOST_URL}/{number}"
    db = redis.Redis.from_url(url)
    db.flushdb()
    yield url
    db.flushdb()
    admin.delete(f"lstmq-test-claim:{number}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using this runs on SQLite and on PostgreSQL, each empty."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lstmq.db'}"
    return empty_postgres(request.getfixturevalue("pg_url"))


@pytest.fixture
def lstmq_env(monkeypatch, tmp_path):
    """A factory: point every LSTMQ_* setting at this test's folder (plus overrides)."""

    def configure(**overrides: str) -> Path:
        home = tmp_path / "home"
        for key in list(os.environ):
            if key.startswith("LSTMQ_") and not key.startswith("LSTMQ_TEST_"):
                monkeypatch.delenv(key)
        monkeypatch.setenv("LSTMQ_HOME", str(home))
        for key, value in overrides.items():
            monkeypatch.setenv(f"LSTMQ_{key.upper()}", str(value))
        get_settings.cache_clear()
        engine_for.cache_clear()
        return home

    yield configure
    get_settings.cache_clear()
    engine_for.cache_clear()


@pytest.fixture
def migrated_db(db_url, lstmq_env):
    """Settings pointing at an upgraded database (SQLite and PostgreSQL); returns the engine."""
    lstmq_env(database_url=db_url)
    engine = get_engine()
    upgrade(engine)
    return engine


@pytest.fixture
def webhook_env(migrated_db, monkeypatch):
    """The migrated database, a webhook signing secret (tests.support.webhooks.SECRET), and
    loopback receivers allowed; returns the engine."""
    monkeypatch.setenv("LSTMQ_WEBHOOK_SECRET", "test-webhook-secret")
    monkeypatch.setenv("LSTMQ_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    return migrated_db


@pytest.fixture
def models(migrated_db):
    """Names of an installed (fake-weight) classifier and generator in this test's LSTMQ_HOME."""
    folder = get_settings().user_model_dir
    return {
        "classify": install_fake_model(folder, "tiny-clf", "classifier"),
        "render": install_fake_model(folder, "tiny-gen", "generator"),
    }


@pytest.fixture
def celery_app(migrated_db, redis_url, monkeypatch):
    """A real Celery app publishing to this session's Redis database (emptied first)."""
    redis.Redis.from_url(redis_url).flushdb()
    monkeypatch.setenv("LSTMQ_BROKER_URL", redis_url)
    get_settings.cache_clear()
    app = make_celery()
    yield app
    app.close()


@pytest.fixture
def start(tmp_path):
    """A factory of `lstmq scheduler` subprocesses, each stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[LstmqProcess] = []

    def start_one() -> LstmqProcess:
        started.append(LstmqProcess(worker_env(), tmp_path / f"scheduler{len(started)}.log", "scheduler"))
        return started[-1]

    yield start_one
    for proc in started:
        proc.stop()
