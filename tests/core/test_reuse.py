"""Result reuse at dispatch (``lstmq.dispatch.reuse``): a pending document whose text has a
result of the installed model version elsewhere in the database gets a copy of it and is done
without being sent; every other document is sent as before. SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from lstmq.db.engine import session_scope
from lstmq.db.queries import job_status
from lstmq.db.schema import DOC_DONE, JOB_FINISHED, Classification, Document, Image, Job, ModelVersion, utcnow
from lstmq.dispatch import reuse
from lstmq.dispatch.reuse import current_version
from lstmq.dispatch.send import make_batch, source_of
from lstmq.settings import get_settings
from tests.support.jobs import add_job, add_results, status_counts

TEXTS = ["Stocks rally as rates hold.", "Late goal wins the derby."]
RESULTS = [("pos", 0.91), ("neg", 0.64)]


@pytest.fixture
def clf(models) -> str:
    """The installed classifier's name."""
    return models["classify"]


def classified(engine, model: str, texts: list[str], version: str | None = None) -> str:
    """A finished job of ``texts`` with results of ``version`` (default: the installed one)."""
    job_id, ids = add_job(engine, texts, model=model)
    add_results(
        engine,
        job_id,
        ids,
        RESULTS[: len(texts)],
        labels=("neg", "pos"),
        model=model,
        version=version or current_version(model),
    )
    return job_id


def make(engine, job_id: str):
    """The job's next batch as the dispatcher makes it, committed (no broker needed)."""
    with session_scope(engine) as session:
        job = source_of(session, job_id)
        return make_batch(session, job) if job else None


def sent_ids(made) -> list[int]:
    return made.payload["ids"] if made else []


def results_of(engine, job_id: str) -> list[tuple]:
    with session_scope(engine) as session:
        stmt = (
            select(Classification.label, Classification.score, Classification.probs, Classification.model_version)
            .join(Document, Document.id == Classification.document_id)
            .where(Document.job_id == job_id)
            .order_by(Document.id)
        )
        return [tuple(row) for row in session.execute(stmt)]


def counters(engine, job_id: str) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        return job.done_count, job.reused_count, job.failed_count


def test_a_document_whose_text_has_a_result_is_done_without_being_sent(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, _ = add_job(migrated_db, TEXTS, model=clf)

    assert make(migrated_db, job_id) is None
    assert status_counts(migrated_db, job_id) == {"done": 2}


def test_a_reused_result_is_its_own_row_with_the_same_label_score_and_probabilities(migrated_db, clf):
    source = classified(migrated_db, clf, TEXTS)
    job_id, _ = add_job(migrated_db, TEXTS, model=clf)
    make(migrated_db, job_id)

    assert results_of(migrated_db, job_id) == results_of(migrated_db, source)


def test_a_reused_result_carries_the_current_model_version(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, _ = add_job(migrated_db, TEXTS, model=clf)
    make(migrated_db, job_id)

    assert {row[3] for row in results_of(migrated_db, job_id)} == {current_version(clf)}


def test_only_documents_without_a_result_to_reuse_are_sent(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, ids = add_job(migrated_db, [TEXTS[0], "A new text.", TEXTS[1], "Another new one."], model=clf)

    assert sent_ids(make(migrated_db, job_id)) == [ids[1], ids[3]]


def test_reused_documents_count_as_done_and_as_reused(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, _ = add_job(migrated_db, [*TEXTS, "A new text."], model=clf)
    make(migrated_db, job_id)

    assert counters(migrated_db, job_id) == (2, 2, 0)


def test_a_job_whose_every_document_is_reused_is_finished_when_its_batch_is_made(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, _ = add_job(migrated_db, TEXTS, model=clf)
    make(migrated_db, job_id)

    with session_scope(migrated_db) as session:
        status = job_status(session, job_id)
    assert (status.state, status.finished_at is not None, status.reused) == (JOB_FINISHED, True, 2)


@pytest.mark.parametrize("age", ["older", "newer"])
def test_a_result_of_another_model_version_is_never_taken(migrated_db, clf, age):
    with session_scope(migrated_db) as session:  # the installed version, first seen now
        session.add(ModelVersion(version=current_version(clf), name=clf, kind="classifier", labels=["neg", "pos"]))
    classified(migrated_db, clf, TEXTS, version=f"{age}-version")
    with session_scope(migrated_db) as session:
        seen = utcnow() + (timedelta(days=1) if age == "newer" else -timedelta(days=1))
        session.execute(update(ModelVersion).where(ModelVersion.version == f"{age}-version").values(first_seen=seen))
    job_id, ids = add_job(migrated_db, TEXTS, model=clf)

    assert sent_ids(make(migrated_db, job_id)) == ids


def test_a_result_of_another_model_is_never_taken(migrated_db, models, clf):
    other = "tiny-clf-2"
    shutil.copytree(get_settings().user_model_dir / clf, get_settings().user_model_dir / other)
    classified(migrated_db, other, TEXTS)  # the same files: the same version id, another name
    job_id, ids = add_job(migrated_db, TEXTS, model=clf)

    assert sent_ids(make(migrated_db, job_id)) == ids


def test_a_job_with_reuse_off_sends_every_document(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, ids = add_job(migrated_db, TEXTS, model=clf)
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).options = {reuse.REUSE: False}

    assert sent_ids(make(migrated_db, job_id)) == ids


def test_a_dispatcher_without_the_model_installed_reuses_nothing(migrated_db, clf):
    classified(migrated_db, clf, TEXTS)
    job_id, ids = add_job(migrated_db, TEXTS, model=clf)
    shutil.rmtree(get_settings().user_model_dir / clf)  # its version cannot be known here

    assert sent_ids(make(migrated_db, job_id)) == ids


def test_reuse_continues_past_pages_with_nothing_to_send(migrated_db, clf):
    many = [f"Known text {i}." for i in range(7)]
    classified(migrated_db, clf, many[:2])
    job_id, ids = add_job(migrated_db, [*many[:2], *many[:2], *many[:2], "A new text."], model=clf)
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).options = {"batch_size": 2}  # three pages of reused documents first

    assert sent_ids(make(migrated_db, job_id)) == [ids[-1]]


def test_one_batch_reuses_a_bounded_number_of_documents_and_the_next_goes_on(migrated_db, clf, monkeypatch):
    monkeypatch.setattr(reuse, "MAX_REUSED_PER_CALL", 2)
    classified(migrated_db, clf, TEXTS)
    job_id, _ = add_job(migrated_db, TEXTS * 3, model=clf)
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).options = {"batch_size": 2}

    make(migrated_db, job_id)
    after_one = counters(migrated_db, job_id)[1]
    make(migrated_db, job_id)
    assert (after_one, counters(migrated_db, job_id)[1]) == (2, 4)


def test_a_reused_image_names_the_source_documents_file(migrated_db, models):
    gen = models["render"]
    source, (source_doc,) = add_job(migrated_db, ["a red circle"], model=gen, task="render")
    path = f"{gen}/{current_version(gen)}/ab/cd/{source_doc}.png"
    with session_scope(migrated_db) as session:
        session.get(Document, source_doc).status = DOC_DONE
        session.add(
            Image(
                document_id=source_doc,
                model=gen,
                model_version=current_version(gen),
                path=path,
                width=8,
                height=8,
                sha256="0",
            )
        )
    job_id, (doc,) = add_job(migrated_db, ["a red circle"], model=gen, task="render")
    make(migrated_db, job_id)

    with session_scope(migrated_db) as session:
        copy = session.get(Image, (doc, gen, current_version(gen)))
        assert (copy.path, copy.width, copy.height) == (path, 8, 8)
