"""`lstmq calibrate`: one temperature fitted on a dev file and stored in an installed artifact's
config.json, and the refusals (unknown model, labels the model lacks, an empty file)."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from lstmq.db.engine import get_engine, session_scope
from lstmq.db.migrate import upgrade
from lstmq.modelstore import version_id
from lstmq.reviews import record
from lstmq.worker.ml.artifacts import update_config
from lstmq.worker.ml.classifier.artifact import load_artifact, save_artifact
from lstmq.worker.ml.classifier.config import TrainConfig
from lstmq.worker.ml.classifier.train import train_classifier
from tests.ml.test_cli import run
from tests.ml.test_training import TINY, synthetic
from tests.support.jobs import add_job, add_results

SHARPEN = 4.0  # the head's weights times this: logits x4, a confidently wrong model


@pytest.fixture(scope="module")
def overconfident():
    """A tiny topic model (uncalibrated) whose logits are scaled up, so it is overconfident."""
    torch.manual_seed(0)
    result = train_classifier(
        synthetic(300, 1), synthetic(60, 2), TrainConfig(**{**TINY, "calibrate": False}), torch.device("cpu")
    )
    with torch.no_grad():
        for member in result.model.members:
            member.head.weight.mul_(SHARPEN)
            member.head.bias.mul_(SHARPEN)
    return result


def write_dev(path, n: int, seed: int, noise_every: int = 5) -> None:
    """Synthetic topic rows with every ``noise_every``-th label moved to the next topic (label
    noise the model cannot learn, so its near-certain scores overstate its accuracy)."""
    data = synthetic(n, seed)
    topics = sorted(set(data.labels))
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i, (text, label) in enumerate(zip(data.texts, data.labels, strict=True)):
            if i % noise_every == 0:
                label = topics[(topics.index(label) + 1) % len(topics)]
            fh.write(json.dumps({"text": text, "label": label}) + "\n")


@pytest.fixture
def home(overconfident, lstmq_env, tmp_path):
    """A model dir holding `topics` (float32, so the stored weights are the scaled ones exactly)."""
    lstmq_env(model_dir=tmp_path / "models")
    r = overconfident
    save_artifact(tmp_path / "models" / "topics", r.model, r.tokenizer, r.labels, 16, {"name": "topics"}, "float32")
    write_dev(tmp_path / "dev.jsonl.gz", 240, 5)
    from lstmq.worker.ml.classifier.inference import clear_cache  # torch: loaded by this module anyway

    clear_cache()
    return tmp_path


def evaluate(capsys, home) -> dict:
    code, out, err = run(capsys, "eval", "--model", "topics", str(home / "dev.jsonl.gz"), "--json")
    assert code == 0, err
    return json.loads(out)


def test_calibrate_lowers_ece_keeps_accuracy_and_stores_the_temperature(home, capsys):
    path = home / "models" / "topics"
    weights, version = (path / "model.safetensors").read_bytes(), version_id(path)
    before = evaluate(capsys, home)
    assert before["calibration"]["ece"] > 0.1  # overconfident by construction

    code, out, err = run(capsys, "calibrate", "--model", "topics", str(home / "dev.jsonl.gz"), "--threads", "1")
    assert code == 0, err
    config = json.loads((path / "config.json").read_text())
    record = config["training"]["calibration"]
    t = config["architecture"]["temperature"]
    assert t == record["temperature"] > 1  # softened
    assert record["ece_before"] == pytest.approx(before["calibration"]["ece"], abs=1e-5)
    assert record["ece_after"] < record["ece_before"] / 2 and record["nll_after"] < record["nll_before"]
    assert record["rows"] == 240 and record["command"].startswith("lstmq calibrate --model topics ")
    held = record["held_out"]
    assert [f["rows"] for f in held["folds"]] == [120, 120]
    assert held["ece_after"] < held["ece_before"] and held["nll_after"] < held["nll_before"]
    assert f"{record['ece_before']:.4f} -> {record['ece_after']:.4f}" in out and "reliability" in out

    # The temperature round-trips: the loaded model computes with it, eval measures what was recorded.
    assert load_artifact(path)[0].cfg.temperature == t
    after = evaluate(capsys, home)
    assert after["calibration"]["ece"] == pytest.approx(record["ece_after"], abs=1e-5)
    assert config["metrics"]["dev"]["ece"] == record["ece_after"]
    assert after["accuracy"] == before["accuracy"] and after["confusion"] == before["confusion"]
    assert (path / "model.safetensors").read_bytes() == weights  # only config.json changed
    assert after["version"] == version_id(path) != version  # other scores: another version
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_calibrating_again_fits_the_same_temperature_from_the_raw_scores(home, capsys):
    argv = ("calibrate", "--model", "topics", str(home / "dev.jsonl.gz"))
    assert run(capsys, *argv)[0] == 0
    first = json.loads((home / "models" / "topics" / "config.json").read_text())
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    again = json.loads((home / "models" / "topics" / "config.json").read_text())
    t = first["architecture"]["temperature"]
    assert out.startswith(f"topics: temperature {t} -> {t},")  # the stored T was set aside first
    assert again["training"]["calibration"] == first["training"]["calibration"]


def refused(capsys, home, dev_name: str) -> str:
    config = (home / "models" / "topics" / "config.json").read_bytes()
    code, out, err = run(capsys, "calibrate", "--model", "topics", str(home / dev_name))
    assert (code, out) == (2, "") and err.count("\n") == 1 and err.startswith("error: ")
    assert (home / "models" / "topics" / "config.json").read_bytes() == config  # untouched
    return err


def test_a_dev_file_with_labels_the_model_lacks_is_refused(home, capsys):
    rows = [{"text": "goal match team", "label": "sport"}, {"text": "bank stock price", "label": "weather"}]
    (home / "odd.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = refused(capsys, home, "odd.jsonl")
    assert "labels the model 'topics' does not know: ['weather']" in err


def test_an_empty_dev_file_is_refused(home, capsys):
    (home / "empty.jsonl").write_text("")
    assert "empty.jsonl: no rows" in refused(capsys, home, "empty.jsonl")


def test_an_unknown_model_is_refused(home, capsys):
    code, out, err = run(capsys, "calibrate", "--model", "nope", str(home / "dev.jsonl.gz"))
    assert (code, out) == (2, "")
    assert err.startswith("error: unknown model 'nope'; installed: ") and err.count("\n") == 1
    assert "topics" in err


def test_a_failed_config_write_leaves_the_old_file_and_no_temporary(home):
    path = home / "models" / "topics"
    old = (path / "config.json").read_bytes()
    with pytest.raises(TypeError):
        update_config(path, metrics={"not json": object()})
    assert (path / "config.json").read_bytes() == old
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


@pytest.fixture
def reviewed_home(home, lstmq_env, tmp_path):
    """``home`` with a database in which a reviewer gave the true labels of the dev rows to the
    topics model's results: all but the first as a random sample, the first least-confident."""
    lstmq_env(model_dir=tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'lstmq.db'}")
    engine = get_engine()
    upgrade(engine)
    with gzip.open(home / "dev.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    labels = load_artifact(home / "models" / "topics")[2]["labels"]
    job_id, ids = add_job(engine, [row["text"] for row in rows], model="topics")
    add_results(engine, job_id, ids, [(labels[0], 0.9)] * len(rows), labels=tuple(labels), model="topics")
    with session_scope(engine) as session:
        record(session, job_id, [{"id": "0", "label": rows[0]["label"]}], "me", "least-confident")
        answers = [{"id": str(i), "label": row["label"]} for i, row in enumerate(rows) if i > 0]
        record(session, job_id, answers, "me", "random")
    return home


def test_calibrate_from_reviews_fits_on_the_random_sample_reviews_only(reviewed_home, capsys):
    code, out, err = run(capsys, "calibrate", "--model", "topics", "--reviews", "--threads", "1")
    assert code == 0, err
    record_ = json.loads((reviewed_home / "models" / "topics" / "config.json").read_text())["training"]["calibration"]
    assert (record_["rows"], record_["file"]) == (239, "random-sample reviews of topics")
    assert record_["ece_after"] < record_["ece_before"]


def test_calibrate_needs_a_file_or_reviews(home, capsys):
    code, _, err = run(capsys, "calibrate", "--model", "topics")
    assert code == 2 and err == "error: give a labelled FILE or --reviews (not both)\n"
