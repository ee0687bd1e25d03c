"""Settings come from the environment; bad values fail with one masked line."""

import subprocess
import sys

import pytest

from lstmq.errors import ConfigError
from lstmq.settings import load_settings, mask_url


def test_unset_urls_mean_embedded_sqlite_and_filesystem_broker(lstmq_env):
    home = lstmq_env()
    settings = load_settings()
    assert settings.embedded_broker
    assert settings.broker == "filesystem://localhost/"
    assert settings.database == f"sqlite:///{home.resolve() / 'lstmq.db'}"
    assert settings.images == (home / "images").resolve()


@pytest.mark.parametrize("url", ["filesystem://", "filesystem://localhost/"])
def test_a_filesystem_broker_url_is_the_embedded_broker_in_the_home_folder(lstmq_env, url):
    lstmq_env(broker_url=url)
    settings = load_settings()
    assert settings.embedded_broker and settings.broker == "filesystem://localhost/"


def test_a_filesystem_broker_url_with_a_folder_is_refused_with_where_messages_go(lstmq_env):
    lstmq_env(broker_url="filesystem:///srv/queue")
    with pytest.raises(ConfigError, match="the embedded broker keeps its messages under LSTMQ_HOME/broker"):
        load_settings()


def test_plain_postgresql_url_uses_psycopg3(lstmq_env):
    lstmq_env(database_url="postgresql://u:p@db:5432/x")
    assert load_settings().database == "postgresql+psycopg://u:p@db:5432/x"


@pytest.mark.parametrize(
    "key, value",
    [("broker_url", "http://user:hunter2@host/0"), ("database_url", "mysql://user:hunter2@host/x")],
)
def test_unsupported_scheme_is_one_line_with_password_masked(lstmq_env, key, value):
    lstmq_env(**{key: value})
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "hunter2" not in message and "***" in message
    assert "\n" not in message


def test_mask_url_hides_only_the_password():
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("postgresql://u@h/x") == "postgresql://u@h/x"


def test_cli_reports_unreachable_database_without_traceback(tmp_path):
    env = {"LSTMQ_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/x", "LSTMQ_HOME": str(tmp_path), "PATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "lstmq", "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "hunter2" not in proc.stderr


@pytest.mark.parametrize("timeout, sweep", [(1, 1), (20, 5), (4 * 3600, 10)])
def test_redis_redelivery_options_reach_kombus_channel(lstmq_env, redis_url, timeout, sweep):
    from lstmq.queue import make_celery

    lstmq_env(broker_url=redis_url, visibility_timeout_s=str(timeout))
    app = make_celery()
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        assert channel.visibility_timeout == timeout
        # a dead worker's batch comes back within timeout + sweep, not timeout + ~100 s
        assert (channel.unacked_restore_interval, channel.unacked_restore_throttle) == (sweep, 1)
        assert channel.unacked_mutex_expire == 60
