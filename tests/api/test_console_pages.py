"""The web console over HTTP (a real `lstmq serve`): login and session cookies, every page,
escaping of document texts and errors, CSRF on forms and on the API with the cookie, and the
offline API docs with their response fields. The browser test (test_console_browser.py) drives
the same pages in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from lstmq.api.tokens import create_token, revoke_token
from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_FAILED, Document, Job, utcnow
from tests.support.api import GOOD, Api, Reply, running_api
from tests.support.jobs import add_batch, add_job, add_results

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("console")) as running:
        yield running


def login(api: Api, scope: str = "admin") -> tuple[str, str]:
    """(Cookie header, CSRF token) of a fresh console session."""
    reply = api.call("POST", "/login", None, urlencode({"token": api.tokens[scope]}).encode(), FORM)
    assert reply.status == 303, reply.body
    cookie = reply.headers["set-cookie"].split(";")[0]
    return cookie, csrf_of(api.call("GET", "/jobs", None, headers={"Cookie": cookie}))


def csrf_of(reply: Reply) -> str:
    return re.search(r'<meta name="csrf" content="([^"]+)">', reply.body.decode()).group(1)


def get(api: Api, path: str, cookie: str) -> Reply:
    return api.call("GET", path, None, headers={"Cookie": cookie})


def test_pages_without_a_session_redirect_to_the_login_form(api):
    reply = api.call("GET", "/jobs/abc", None)
    assert (reply.status, reply.headers["location"]) == (303, "/login?next=/jobs/abc")
    assert 'name="token"' in api.call("GET", "/login", None).body.decode()


def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(api):
    reply = api.call("POST", "/login", None, urlencode({"token": api.tokens["read"], "next": "/models"}).encode(), FORM)
    assert (reply.status, reply.headers["location"]) == (303, "/models")
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert api.tokens["read"].split("_")[-1] not in cookie


@pytest.mark.parametrize("token", ["", "lstmq_000000000000_" + "x" * 43])
def test_an_unknown_token_gets_the_form_again(api, token):
    reply = api.call("POST", "/login", None, urlencode({"token": token}).encode(), FORM)
    assert reply.status == 401 and "Unknown or revoked token" in reply.body.decode()
    assert "set-cookie" not in reply.headers


def test_login_never_redirects_to_another_site(api):
    reply = api.call(
        "POST", "/login", None, urlencode({"token": api.tokens["read"], "next": "//evil.example"}).encode(), FORM
    )
    assert reply.headers["location"] == "/jobs"


def test_a_forged_or_revoked_session_is_refused(api):
    with session_scope(api.stack.engine) as session:
        token = create_token(session, "console-soon-revoked", "read")
    reply = api.call("POST", "/login", None, urlencode({"token": token}).encode(), FORM)
    cookie = reply.headers["set-cookie"].split(";")[0]
    assert get(api, "/jobs", cookie).status == 200
    assert get(api, "/jobs", cookie[:-4] + "0000").status == 303
    with session_scope(api.stack.engine) as session:
        revoke_token(session, "console-soon-revoked")
    assert get(api, "/jobs", cookie).status == 303


def test_the_job_page_escapes_texts_labels_and_errors(api):
    job_id, ids = add_job(api.stack.engine, [XSS, "calm text"])
    with session_scope(api.stack.engine) as session:
        session.execute(update(Document).where(Document.id == ids[0]).values(status=DOC_FAILED, error=XSS))
    cookie, _ = login(api)
    reply = get(api, f"/jobs/{job_id}", cookie)
    html = reply.body.decode()
    assert reply.status == 200 and "calm text" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 2  # the text and the error
    assert "default-src 'self'" in reply.headers["content-security-policy"]


def test_the_jobs_page_lists_jobs_with_their_progress(api):
    job_id, _ = add_job(api.stack.engine, ["one", "two", "three"])
    html = get(api, "/jobs", login(api, "read")[0]).body.decode()
    assert f'data-job="{job_id}"' in html and '<progress max="3" value="0"' in html
    assert 'id="submit-form"' not in html  # a read token cannot submit


def test_admin_forms_need_the_session_csrf_token_and_the_admin_scope(api):
    job_id, _ = add_job(api.stack.engine, ["a"])
    cookie, csrf = login(api)
    path = f"/jobs/{job_id}/cancel"
    assert api.call("POST", path, None, b"", FORM | {"Cookie": cookie}).status == 403
    assert api.call("POST", path, None, b"csrf=wrong", FORM | {"Cookie": cookie}).status == 403
    read_cookie, read_csrf = login(api, "read")
    assert api.call("POST", path, None, f"csrf={read_csrf}".encode(), FORM | {"Cookie": read_cookie}).status == 403
    reply = api.call("POST", path, None, f"csrf={csrf}".encode(), FORM | {"Cookie": cookie})
    assert (reply.status, reply.headers["location"]) == (303, f"/jobs/{job_id}?done=cancelled")
    with session_scope(api.stack.engine) as session:
        assert session.get(Job, job_id).state == "cancelled"
    assert "Job cancelled" in get(api, reply.headers["location"], cookie).body.decode()


def test_the_api_takes_the_cookie_but_changes_nothing_without_the_csrf_header(api):
    cookie, csrf = login(api, "submit")
    assert api.call("GET", "/api/v1/jobs", None, headers={"Cookie": cookie}).status == 200
    path = "/api/v1/jobs?model=news"
    assert api.call("POST", path, None, GOOD, {"Cookie": cookie}).status == 403
    assert api.call("POST", path, None, GOOD, {"Cookie": cookie, "X-CSRF-Token": csrf}).status == 201


def test_models_show_their_cards_and_schedules_their_runs(api):
    cookie, _ = login(api, "read")
    assert 'href="/models/news"' in get(api, "/models", cookie).body.decode()
    card = get(api, "/models/news", cookie).body.decode()
    assert "<h1>Model card: <code>news</code></h1>" in card and "<table>" in card
    assert get(api, "/models/nope", cookie).status == 404
    assert "No schedules" in get(api, "/schedules", cookie).body.decode()


def test_the_api_docs_page_needs_nothing_from_the_internet(api):
    html = api.call("GET", "/api/docs", None).body.decode()
    assert "/api/v1/jobs/{job_id}/results" in html and "Submit a file" in html
    assert "http://" not in html and "https://" not in html


def test_the_api_docs_page_lists_the_fields_of_each_response(api):
    html = api.call("GET", "/api/docs", None).body.decode()
    assert "<td><code>jobs[].health.stalled_since</code></td><td>string (date-time)</td>" in html


def test_errors_on_pages_are_pages(api):
    cookie, _ = login(api, "read")
    for path, status, words in [("/jobs/no-such-job", 404, "no job"), ("/jobs/x?after=many", 422, "after")]:
        reply = get(api, path, cookie)
        assert reply.status == status and reply.headers["content-type"].startswith("text/html")
        assert words in reply.body.decode()


def test_a_login_form_posted_from_another_site_is_refused(api):
    body = urlencode({"token": api.tokens["read"]}).encode()
    assert api.call("POST", "/login", None, body, FORM | {"Origin": "https://evil.example"}).status == 403
    assert api.call("POST", "/login", None, body, FORM | {"Origin": f"http://127.0.0.1:{api.port}"}).status == 303


def test_the_results_table_pages_and_filters(api):
    job_id, ids = add_job(api.stack.engine, [f"doc text {i}" for i in range(60)])
    with session_scope(api.stack.engine) as session:
        session.execute(update(Document).where(Document.id == ids[-1]).values(status=DOC_FAILED, error="boom"))
    cookie, _ = login(api, "read")
    first = get(api, f"/jobs/{job_id}", cookie).body.decode().split('id="results"')[1]
    assert first.count("<tr><td>") == 50 and f'href="?after={ids[49]}#results"' in first
    rest = get(api, f"/jobs/{job_id}?after={ids[49]}", cookie).body.decode().split('id="results"')[1]
    assert rest.count("<tr><td>") == 10 and "doc text 50" in rest and "Next page" not in rest
    failed = get(api, f"/jobs/{job_id}?status=failed", cookie).body.decode().split('id="results"')[1]
    assert "doc text 59" in failed and "doc text 0<" not in failed


def test_a_stalled_job_says_so_on_its_page(api):
    job_id, ids = add_job(api.stack.engine, ["waiting"])
    add_batch(api.stack.engine, job_id, ids)  # sent, and nothing came back
    hour_ago = utcnow() - timedelta(hours=1)
    with session_scope(api.stack.engine) as session:
        session.execute(update(Document).where(Document.job_id == job_id).values(updated_at=hour_ago))
        session.execute(update(Job).where(Job.id == job_id).values(created_at=hour_ago, submitted_at=hour_ago))
    html = get(api, f"/jobs/{job_id}", login(api, "read")[0]).body.decode()
    assert "stalled since" in html and "waiting for a live worker" in html


def test_a_job_lstmq_cancelled_says_why_on_its_page(api):
    job_id, _ = add_job(api.stack.engine, ["half"], state="cancelled")
    with session_scope(api.stack.engine) as session:
        session.get(Job, job_id).options = {"cancelled": "its submit stopped <b>here</b>"}
    html = get(api, f"/jobs/{job_id}", login(api, "read")[0]).body.decode()
    assert "Cancelled: its submit stopped &lt;b&gt;here&lt;/b&gt;" in html


def test_the_review_page_offers_a_button_per_label_and_disables_them_for_a_read_token(api):
    job_id, ids = add_job(api.stack.engine, ["one", "two"])
    add_results(api.stack.engine, job_id, ids, [("World", 0.9), ("Sports", 0.6)])
    review_html = get(api, f"/jobs/{job_id}/review?mode=least-confident", login(api, "review")[0]).body.decode()
    read_html = get(api, f"/jobs/{job_id}/review", login(api, "read")[0]).body.decode()
    assert [re.findall(r'data-key="(\d)"', html) for html in (review_html, read_html)] == [["1", "2", "3", "4"]] * 2
    assert " disabled" not in review_html and read_html.count(" disabled>") == 4
