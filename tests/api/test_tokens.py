"""API tokens: shown once, stored only as a salted hash, scopes that nest; the `lstmq token`
commands and `lstmq serve`'s refusal to open a public address while no token exists."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lstmq.api.tokens import SCOPES, authenticate, create_token, grants, revoke_token
from lstmq.db.engine import session_scope
from lstmq.db.schema import ApiToken
from lstmq.errors import InputError, UserError
from tests.support.processes import run_lstmq

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


def test_a_token_is_stored_only_as_a_salted_hash(migrated_db):
    with session_scope(migrated_db) as session:
        first = create_token(session, "ci", "submit")
        second = create_token(session, "ci-2", "submit")
    secret = first.split("_", 2)[2]  # lstmq_<id>_<secret>; the secret itself may hold "_"
    with session_scope(migrated_db) as session:
        rows = session.scalars(select(ApiToken)).all()
        stored = [str(value) for row in rows for value in vars(row).values()]
        assert not any(secret in value for value in stored)
        assert rows[0].salt != rows[1].salt and first != second


def test_the_token_authenticates_its_caller_until_revoked(migrated_db):
    with session_scope(migrated_db) as session:
        token = create_token(session, "ci", "read")
    with session_scope(migrated_db) as session:
        caller = authenticate(session, token)
        assert (caller.name, caller.scope) == ("ci", "read")
        assert session.get(ApiToken, caller.token_id).last_used_at is not None
        assert authenticate(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        revoke_token(session, "ci")
    with session_scope(migrated_db) as session:
        assert authenticate(session, token) is None


def test_each_scope_grants_its_set_review_and_submit_apart():
    assert [[grants(have, need) for need in SCOPES] for have in SCOPES] == [
        [True, False, False, False],  # read
        [True, True, False, False],  # submit: not review
        [True, False, True, False],  # review: not submit
        [True, True, True, True],  # admin
    ]


@pytest.mark.parametrize(
    "name, scope, error",
    [("ci", "root", InputError), ("bad name", "read", InputError), ("taken", "read", UserError)],
)
def test_bad_scope_bad_name_and_taken_names_are_refused(migrated_db, name, scope, error):
    with session_scope(migrated_db) as session:
        create_token(session, "taken", "read")
    with pytest.raises(error), session_scope(migrated_db) as session:
        create_token(session, name, scope)


@pytest.fixture
def sqlite_home(lstmq_env, tmp_path):
    """Settings on an upgraded SQLite database, for the commands run as subprocesses."""
    lstmq_env(database_url=f"sqlite:///{tmp_path / 'lstmq.db'}")
    assert run_lstmq("db", "upgrade").returncode == 0


def test_token_create_prints_the_token_alone_on_the_last_line_and_list_never_shows_it(sqlite_home):
    created = run_lstmq("token", "create", "ci", "--scope", "submit")
    assert created.returncode == 0, created.stderr
    token = created.stdout.decode().splitlines()[-1]
    assert token.startswith("lstmq_") and " " not in token
    listed = run_lstmq("token", "list", "--json")
    assert [(t["name"], t["scope"]) for t in json.loads(listed.stdout)] == [("ci", "submit")]
    assert token.split("_", 2)[2].encode() not in listed.stdout + run_lstmq("token", "list").stdout
    assert run_lstmq("token", "revoke", "ci").returncode == 0
    assert json.loads(run_lstmq("token", "list", "--json").stdout)[0]["revoked_at"] is not None


def test_serve_refuses_a_public_address_while_no_token_exists(sqlite_home):
    refused = run_lstmq("serve", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 2
    assert refused.stderr.decode().count("\n") == 1
    assert "lstmq token create" in refused.stderr.decode()


def test_serve_refuses_a_bad_port_in_one_line(sqlite_home):
    refused = run_lstmq("serve", "--port", "http")
    assert (refused.returncode, refused.stderr.decode()) == (
        2,
        "error: --port must be a number from 1 to 65535, got 'http'\n",
    )
