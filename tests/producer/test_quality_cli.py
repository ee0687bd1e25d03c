"""`lstmq review`, `lstmq reviews export`, `lstmq quality` and `lstmq drift` as a user types them."""

from __future__ import annotations

import io
import json

import pytest

from lstmq.cli import main
from lstmq.db.engine import session_scope
from lstmq.reviews import progress
from lstmq.settings import get_settings
from tests.support.jobs import add_job, add_results


def lstmq(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def job(migrated_db) -> str:
    job_id, ids = add_job(migrated_db, [f"text {i}" for i in range(5)])
    add_results(migrated_db, job_id, ids, [("World", 0.5 + i / 10) for i in range(5)])
    return job_id


def test_review_takes_a_number_enter_keeps_the_models_label_and_q_quits(migrated_db, job, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n\nq\n"))
    code, out, _ = lstmq(capsys, "review", job, "--mode", "least-confident", "-n", "4")
    assert code == 0 and out.strip().endswith("2 of 4 reviewed")
    assert "[1 of 4] 0\ntext 0" in out and "1) World  2) Sports" in out


def test_exported_reviews_are_text_and_label_lines(migrated_db, job, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n\nq\n"))
    lstmq(capsys, "review", job, "--mode", "least-confident", "-n", "4")
    code, out, _ = lstmq(capsys, "reviews", "export", "--model", "news", "-o", str(tmp_path / "r.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert code == 0 and rows == [{"text": "text 0", "label": "Sports"}, {"text": "text 1", "label": "World"}]


def test_a_wrong_key_asks_again_with_one_error_line(migrated_db, job, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("9\n1\nq\n"))
    code, out, err = lstmq(capsys, "review", job, "-n", "2")
    assert code == 0 and err.strip() == "error: type 1-4, Enter or q"
    with session_scope(migrated_db) as session:
        assert progress(session, job) == (1, 5)


def test_exporting_a_model_without_reviews_is_a_one_line_error(migrated_db, job, capsys, tmp_path):
    code, _, err = lstmq(capsys, "reviews", "export", "--model", "news", "-o", str(tmp_path / "r.jsonl"))
    assert code != 0 and err.strip() == "error: no reviews of model 'news' (review a job with `lstmq review JOB`)"
    assert not (tmp_path / "r.jsonl").exists()


def test_quality_json_is_the_apis_object(migrated_db, job, capsys):
    code, out, _ = lstmq(capsys, "quality", job, "--json")
    found = json.loads(out)
    assert code == 0 and found["expected_accuracy"] == pytest.approx(0.7) and found["agreement"] is None


def test_quality_table_shows_agreement_and_interval(migrated_db, job, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\nq\n"))
    lstmq(capsys, "review", job, "-n", "2")
    _, out, _ = lstmq(capsys, "quality", job)
    assert out.splitlines()[2].split() == ["(all)", "5", "2", "2", "1.000", "[0.342,", "1.000]", "0.700"]


def test_drift_needs_one_schedule_or_model_and_two_jobs(migrated_db, job, capsys):
    code, _, err = lstmq(capsys, "drift", "--model", "news", job)
    assert code != 0 and err.strip() == (
        "error: --model compares two jobs: lstmq drift --model M JOB_A JOB_B (JOB_A is the reference)"
    )


def test_drift_of_a_job_against_itself_is_zero(migrated_db, job, capsys):
    code, out, _ = lstmq(capsys, "drift", "--model", "news", job, job, "--json")
    (run,) = json.loads(out)["runs"]
    assert code == 0 and (run["label_psi"], run["score_psi"], run["drifted"]) == (0.0, 0.0, False)


def test_the_model_card_gets_field_accuracy_once_however_often_it_is_written(migrated_db, job, capsys, monkeypatch):
    folder = get_settings().user_model_dir / "news"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "MODEL_CARD.md").write_text("# news\n\nTrained on news.\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n\n\nq\n"))  # one label changed, two kept
    lstmq(capsys, "review", job, "-n", "3")
    assert lstmq(capsys, "reviews", "card", "--model", "news")[0] == 0
    assert lstmq(capsys, "reviews", "card", "--model", "news")[0] == 0
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.startswith("# news\n\nTrained on news.\n\n## Field accuracy") and card.count("## Field accuracy") == 1
    assert "| v1 | 3 | 0.667 | 0.208-0.939 |" in card


def test_reviewing_a_job_without_results_is_a_one_line_error(migrated_db, capsys):
    job_id, _ = add_job(migrated_db, ["pending"])
    code, _, err = lstmq(capsys, "review", job_id)
    assert code != 0 and err == f"error: job {job_id} has no classifications to review yet\n"
