"""The console in a real headless browser (Debian's chromium and chromedriver, driven by Selenium;
nothing is downloaded: the driver path is given and Selenium Manager is kept offline).

Log in, upload a file, watch the job finish, see the label chart and the results table (a
document's markup shown as text), review three documents with number keys, open a render job's
gallery and one full image. Screenshots go
to $LSTMQ_TEST_ARTIFACTS, else out/screenshots/ in the repository (git-ignored: the path CI keeps),
and their paths are printed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Document, Review
from tests.conftest import service_missing
from tests.support.api import Api, running_api
from tests.support.processes import ROOT, run_lstmq
from tests.support.stacks import JOB_TIMEOUT_S

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30
MARKUP = "<b>bold?</b> Markets <script>alert(1)</script> slid"
NEWS = [
    "Stocks rallied as the central bank held interest rates steady.",
    "The home side won the final 2-1 after extra time.",
    "A new chip doubles battery life in phones, the maker said.",
    "Leaders met in Geneva to discuss the ceasefire.",
    MARKUP,
]
CAPTIONS = ["a red circle", "a small blue square at the top left", "a green triangle below a white circle"]


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("browser")) as running:
        running.stack.start_worker()
        yield running


@pytest.fixture(scope="module")
def browser(api) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        service_missing("chromium", f"install chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        service_missing("chromium", exc.msg)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    # LSTMQ_TEST_*: the per-test settings fixture clears every other LSTMQ_* variable.
    folder = Path(os.environ.get("LSTMQ_TEST_ARTIFACTS") or ROOT / "out" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(browser, shots: Path, name: str) -> None:
    browser.set_window_size(1280, 900)  # scrollHeight is at least the window's: measure afresh
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(900, min(height + 140, 4000)))  # the whole page, headless
    path = shots / f"console-{name}.png"
    browser.save_screenshot(str(path))
    print(f"screenshot: {path}")


def wait(browser, timeout_s: float = WAIT_S) -> WebDriverWait:
    """A wait that outlasts page loads: an element read while the page is replaced is stale,
    not a failure."""
    return WebDriverWait(browser, timeout_s, ignored_exceptions=(StaleElementReferenceException,))


def upload(browser, api: Api, path: Path, model: str, fresh: bool = True) -> str:
    """Submit ``path`` from the jobs page (``fresh``: loaded anew, default fields); returns the
    job id once its page is shown."""
    if fresh:
        browser.get(f"http://127.0.0.1:{api.port}/jobs")
    browser.find_element(By.ID, "file").send_keys(str(path))
    Select(browser.find_element(By.ID, "model")).select_by_value(model)
    browser.find_element(By.ID, "submit").click()
    wait(browser).until(lambda b: re.search(r"/jobs/[0-9a-f]{32}$", b.current_url))
    return browser.current_url.rsplit("/", 1)[1]


def wait_finished(browser) -> None:
    """The page follows the job by itself (console.js) and reloads once it is done; data-drawn
    is the state the server drew the page in (the script updates data-state, not data-drawn), so
    this waits for the reloaded page, not the old one about to be replaced."""
    wait(browser, JOB_TIMEOUT_S).until(
        lambda b: b.find_element(By.CSS_SELECTOR, ".summary").get_attribute("data-drawn") == "finished"
    )


@pytest.fixture(scope="module")
def console(browser, api, shots):
    """The browser, logged in through the form with an admin token."""
    browser.get(f"http://127.0.0.1:{api.port}/jobs")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "token").send_keys(api.tokens["admin"])
    screenshot(browser, shots, "login")
    browser.find_element(By.ID, "login").click()
    # The login page's own address ends in /jobs too (/login?next=/jobs): wait for the jobs page.
    wait(browser).until(lambda b: urlsplit(b.current_url).path == "/jobs")
    wait(browser).until(lambda b: "test-admin (admin)" in b.find_element(By.TAG_NAME, "header").text)
    return browser


def test_an_unusable_upload_is_refused_on_the_page(console, api, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    console.get(f"http://127.0.0.1:{api.port}/jobs")
    console.find_element(By.ID, "file").send_keys(str(empty))
    console.find_element(By.ID, "submit").click()
    error = wait(console).until(lambda b: b.find_element(By.ID, "submit-error").text)
    assert "empty body" in error and console.current_url.endswith("/jobs")


def test_a_csv_upload_names_its_text_column(console, api, tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("key,body\nr1,Loved every minute of it.\nr2,Dull and far too long.\n")
    console.get(f"http://127.0.0.1:{api.port}/jobs")
    for field, value in (("text-field", "body"), ("id-field", "key")):
        console.find_element(By.ID, field).clear()
        console.find_element(By.ID, field).send_keys(value)
    upload(console, api, source, "sentiment", fresh=False)
    wait_finished(console)
    rows = console.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == ["r1", "r2"]


def test_upload_and_watch_a_classify_job_finish(console, api, shots, tmp_path):
    browser = console
    source = tmp_path / "news.jsonl"
    source.write_text("".join(json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(NEWS)))
    upload(browser, api, source, "news")
    wait_finished(browser)
    bars = browser.find_elements(By.CSS_SELECTOR, "#labels rect.bar")
    assert 1 <= len(bars) <= 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scores rect.bar")) == 10
    rows = browser.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == [f"n{i}" for i in range(len(NEWS))]
    assert MARKUP in rows[-1].text  # shown as text, never run
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is the check
    screenshot(browser, shots, "job-classify")


def test_review_three_documents_with_number_keys(console, api, shots, tmp_path):
    browser = console
    source = tmp_path / "review.jsonl"
    source.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(NEWS)))
    job_id = upload(browser, api, source, "news")
    wait_finished(browser)
    assert browser.find_element(By.CSS_SELECTOR, '#quality tr[data-label="all"]').text.split()[:2] == ["all", "0"]
    browser.find_element(By.ID, "review-random").click()
    progress = wait(browser).until(lambda b: b.find_element(By.ID, "review-progress"))
    wait(browser).until(lambda b: progress.text == "0 of 5 reviewed")
    labels = [b.text.split(" · ")[1] for b in browser.find_elements(By.CSS_SELECTOR, "#review-buttons button")]
    answered = {}
    for count, key in enumerate("123", 1):
        answered[browser.find_element(By.ID, "review-id").text] = labels[int(key) - 1]
        browser.find_element(By.TAG_NAME, "body").send_keys(key)
        wait(browser).until(lambda b, count=count: progress.text == f"{count} of 5 reviewed")
    screenshot(browser, shots, "review")
    with session_scope(api.stack.engine) as session:
        stored = session.execute(
            select(Document.external_id, Review.label, Review.reviewer, Review.mode)
            .join(Review, Review.document_id == Document.id)
            .where(Document.job_id == job_id)
        ).all()
    assert {row[0]: tuple(row[1:]) for row in stored} == {
        i: (label, "test-admin", "random") for i, label in answered.items()
    }


def test_a_render_job_shows_a_gallery_and_each_full_image(console, api, shots, tmp_path):
    browser = console
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(CAPTIONS) + "\n")
    upload(browser, api, source, "shapes")
    wait_finished(browser)
    images = browser.find_elements(By.CSS_SELECTOR, ".gallery img")
    assert len(images) == len(CAPTIONS)
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".gallery figcaption")]
    assert captions == CAPTIONS
    screenshot(browser, shots, "job-render")
    images[0].click()
    wait(browser).until(lambda b: re.search(r"/api/v1/images/.+\.png$", b.current_url))
    assert browser.execute_script("return document.images[0].naturalWidth") > 0
    browser.get(f"http://127.0.0.1:{api.port}/jobs")
    states = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "tbody [data-field=state]")]
    assert states and set(states) == {"finished"}
    screenshot(browser, shots, "jobs")


def test_models_schedules_and_the_api_docs(console, api, shots, tmp_path):
    browser = console
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "monday.jsonl").write_text(json.dumps({"text": NEWS[0]}) + "\n{broken\n")
    for args in (
        ["add", "nightly", "--path", f"{corpus}/*.jsonl", "--model", "news", "--every", "1d"],
        ["run", "nightly"],
    ):
        done = run_lstmq("schedule", *args)
        assert done.returncode == 0, done.stderr
    for path, name, heading in [
        ("/models", "models", "Models"),
        ("/models/news", "model-card", "Model card: news"),
        ("/schedules", "schedules", "Schedules"),
        ("/schedules/nightly", "schedule-history", "Schedule nightly"),
        ("/api/docs", "api-docs", "lstmq API 0.1.0"),
    ]:
        browser.get(f"http://127.0.0.1:{api.port}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == heading
        screenshot(browser, shots, name)
    endpoints = [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".endpoint h2")]
    assert "GET /api/v1/jobs/{job_id}/results" in endpoints
