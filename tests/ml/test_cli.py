"""The ML commands end to end, in-process: train classifier, eval, predict, models, and their errors."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from lstmq.cli import main
from lstmq.errors import InputError
from lstmq.readers.records import Rejected
from lstmq.readers.sources import read_sources, resolve_sources

WORDS = {"pos": "great lovely superb fun brilliant".split(), "neg": "awful boring dull bad terrible".split()}
FILLER = "the film was a and it this movie plot acting".split()


def write_jsonl(path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(n):
            label = ("neg", "pos")[i % 2]
            words = rng.choices(FILLER, k=rng.randint(3, 8)) + rng.choices(WORDS[label], k=2)
            rng.shuffle(words)
            fh.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model_home(tmp_path_factory):
    """A user model dir holding `tiny`, trained once through `lstmq train classifier`."""
    root = tmp_path_factory.mktemp("ml")
    write_jsonl(root / "train.jsonl.gz", 240, 1)
    write_jsonl(root / "dev.jsonl.gz", 60, 2)
    return root


@pytest.fixture
def env(model_home, lstmq_env, capsys):
    lstmq_env(model_dir=model_home / "models")
    if not (model_home / "models" / "tiny").exists():
        code, out, err = run(
            capsys,
            "train",
            "classifier",
            "--name",
            "tiny",
            "--train",
            str(model_home / "train.jsonl.gz"),
            "--dev",
            str(model_home / "dev.jsonl.gz"),
            "--embed-dim",
            "16",
            "--hidden-dim",
            "16",
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--lr",
            "0.01",
            "--min-frequency",
            "1",
            "--max-tokens",
            "12",
            "--device",
            "cpu",
        )
        assert code == 0, err
        assert "tiny: dev accuracy" in out
    from lstmq.worker.ml.classifier.inference import clear_cache

    clear_cache()
    return model_home


def test_train_writes_artifact_and_model_card(env):
    path = env / "models" / "tiny"
    assert {p.name for p in path.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"}
    config = json.loads((path / "config.json").read_text())
    assert config["labels"] == ["neg", "pos"] and config["training"]["train_rows"] == 240
    assert config["training"]["command"].startswith("lstmq train classifier --name tiny")
    card = (path / "MODEL_CARD.md").read_text()
    assert "lstmq train classifier --name tiny" in card and "Confusion matrix" in card
    calibration = config["training"]["calibration"]
    assert config["architecture"]["temperature"] == calibration["temperature"]
    assert f"{calibration['ece_before']:.4f} before, **{calibration['ece_after']:.4f}** after" in card


def test_distill_trains_a_student_recording_its_teacher_and_their_agreement(env, capsys, tmp_path):
    (tmp_path / "extra.txt").write_text("great superb fun\nawful dull plot\nthe acting was lovely\n")
    student = tmp_path / "student"
    code, out, err = run(
        capsys,
        *("train", "distill", "--teacher", "tiny", "--name", "student", "--out", str(student)),
        *("--train", str(env / "train.jsonl.gz"), "--dev", str(env / "dev.jsonl.gz")),
        *("--extra-text", str(tmp_path / "extra.txt"), "--alpha", "0.8", "--no-calibrate"),
        *("--embed-dim", "16", "--hidden-dim", "16", "--epochs", "3", "--batch-size", "16", "--lr", "0.01"),
        *("--min-frequency", "1", "--max-tokens", "12", "--device", "cpu", "--threads", "1"),
    )
    assert code == 0, err
    assert out.startswith("student: dev accuracy")
    config = json.loads((student / "config.json").read_text())
    tiny = json.loads(run(capsys, "models", "--json")[1])["models"]
    distillation = config["training"]["distillation"]
    assert distillation["teacher"] == "tiny"
    assert distillation["teacher_version"] == next(m["version"] for m in tiny if m["name"] == "tiny")
    assert distillation["extra_rows"] == 3 and distillation["alpha"] == 0.8 and distillation["temperature"] == 2.0
    assert distillation["dev_agreement"] > 0.8
    assert "temperature" not in config["architecture"] and config["training"]["calibration"] is None
    command = config["training"]["command"]
    assert command.startswith("lstmq train distill --teacher tiny --extra-text ") and "--no-calibrate" in command
    card = (student / "MODEL_CARD.md").read_text()
    assert "Distilled from `tiny`" in card and "Not calibrated" in card and command in card


def test_predict_jsonl_writes_id_label_score_in_input_order(env, capsys, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"id": "a", "text": "great superb fun"}, {"text": "awful dull bad"}, {"id": 7, "text": "lovely"}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, _, err = run(capsys, "predict", "--model", "tiny", str(src), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, err
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == ["a", 1, "7"]  # ids are strings, as `submit` stores them
    assert [o["label"] for o in out] == ["pos", "neg", "pos"]
    assert all(set(o) == {"id", "label", "score"} and 0.5 <= o["score"] <= 1 for o in out)


def test_predict_reads_csv_and_text_lines_to_stdout(env, capsys, tmp_path):
    (tmp_path / "in.csv").write_text('id,text\nx1,"great, lovely fun"\nx2,awful boring\n')
    (tmp_path / "in.txt").write_text("great lovely\nterrible dull\n")
    for name, ids in (("in.csv", ["x1", "x2"]), ("in.txt", [0, 1])):
        code, out, err = run(capsys, "predict", "--model", "tiny", str(tmp_path / name))
        assert code == 0, err
        results = [json.loads(line) for line in out.splitlines()]
        assert [(r["id"], r["label"]) for r in results] == list(zip(ids, ["pos", "neg"], strict=True))


def test_predict_gives_bad_records_an_error_and_keeps_going(env, capsys, tmp_path):
    src = tmp_path / "bad.jsonl"
    lines = [
        b'{"text": "great fun"}',
        b'{"text": ""}',
        b'{"text": "   "}',
        b'{"text": "\xff\xfe not utf-8"}',
        b"{not json",
        json.dumps({"text": "lovely " * 100_000}).encode(),
        b'{"text": "qqq zzz"}',
        b'{"id": 3}',
    ]
    src.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = run(capsys, "predict", "--model", "tiny", str(src))
    assert code == 0, err
    ok, empty, blank, undecodable, broken, huge, unknown, no_text = [json.loads(x) for x in out.splitlines()]
    assert ok["label"] == "pos" and "error" not in ok
    assert empty["error"] == blank["error"] == "empty text field 'text'"
    assert empty["label"] is None and empty["score"] is None
    assert undecodable == {"id": 3, "label": None, "score": None, "error": "text is not valid UTF-8"}
    assert broken == {
        "id": 4,
        "label": None,
        "score": None,
        "error": "malformed JSON (Expecting property name enclosed in double quotes at column 2)",
    }
    assert huge["label"] == "pos" and huge["flags"] == ["truncated"]
    assert unknown["flags"] == ["no_known_tokens"] and unknown["label"] in ("pos", "neg")
    assert no_text["id"] == "3" and no_text["error"] == "missing text field 'text'"


# The same input gives the same records to `lstmq submit` and `lstmq predict`: (id, error).
SAME_INPUTS = {
    "json-lines.json": (
        b'{"id": "a", "text": "great fun"}\n{"text": ""}\n{"text": "awful dull"}\n',
        [("a", None), (1, "empty text field 'text'"), (2, None)],
    ),
    "tabs.tsv": (
        b"id\ttext\nt1\tgreat, fun\nt2\t\nt3\tawful dull\n",
        [("t1", None), ("t2", "empty text field 'text'"), ("t3", None)],
    ),
    "gzip-without-suffix.jsonl": (
        gzip.compress(b'{"text": "great fun"}\n{"text": 5}\n'),
        [(0, None), (1, "text field 'text' is not a string")],
    ),
    "blank-lines.txt": (b"great fun\n\n   \nawful dull\n", [(0, None), (1, None)]),
}


def submit_view(path) -> list[tuple]:
    items = read_sources(resolve_sources([str(path)]))
    return [
        (number if item.external_id is None else item.external_id, item.reason if isinstance(item, Rejected) else None)
        for number, item in enumerate(items)
    ]


@pytest.mark.parametrize("name", SAME_INPUTS)
def test_predict_and_submit_read_the_same_records(env, capsys, tmp_path, name):
    data, expected = SAME_INPUTS[name]
    (tmp_path / name).write_bytes(data)
    assert submit_view(tmp_path / name) == expected
    code, out, err = run(capsys, "predict", "--model", "tiny", str(tmp_path / name))
    assert code == 0, err
    assert [(o["id"], o.get("error")) for o in map(json.loads, out.splitlines())] == expected


def test_predict_and_submit_refuse_a_json_array_alike(env, capsys, tmp_path):
    path = tmp_path / "array.json"
    path.write_text('\n  [{"text": "great fun"},\n   {"text": "awful"}]\n')
    message = f"{path}: a JSON array is not JSON Lines; convert it with: jq -c '.[]' {path}"
    code, out, err = run(capsys, "predict", "--model", "tiny", str(path))
    assert (code, out, err) == (2, "", f"error: {message}\n")
    with pytest.raises(InputError) as refused:
        resolve_sources([str(path)])
    assert str(refused.value) == message


def test_eval_json_reports_accuracy_f1_and_confusion(env, capsys):
    code, out, err = run(capsys, "eval", "--model", "tiny", str(env / "dev.jsonl.gz"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"] == 60 and report["accuracy"] > 0.8
    assert set(report["per_class"]) == {"neg", "pos"} and {"precision", "recall", "f1"} <= set(
        report["per_class"]["pos"]
    )
    assert sum(map(sum, report["confusion"])) == 60 and 0 < report["macro_f1"] <= 1
    assert 0 <= report["calibration"]["ece"] < 0.2
    assert sum(b["count"] for b in report["calibration"]["bins"]) == 60


def test_eval_refuses_gold_labels_the_model_cannot_predict(env, capsys, tmp_path):
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"text": "good", "label": "pos"}\n{"text": "fine", "label": "positive"}\n')
    code, out, err = run(capsys, "eval", "--model", "tiny", str(odd))
    assert (code, out) == (2, "")
    assert err == f"error: {odd}: labels the model 'tiny' does not know: ['positive'] (it has ['neg', 'pos'])\n"


def test_an_output_path_in_a_missing_folder_is_one_line(env, capsys, tmp_path):
    target = tmp_path / "no" / "such" / "out.jsonl"
    code, out, err = run(capsys, "predict", "--model", "tiny", str(env / "dev.jsonl.gz"), "-o", str(target))
    assert (code, err) == (2, f"error: {target}: No such file or directory\n")


def test_eval_prints_calibration_error_and_reliability_table(env, capsys):
    code, out, err = run(capsys, "eval", "--model", "tiny", str(env / "dev.jsonl.gz"))
    assert code == 0, err
    assert "expected calibration error 0." in out and "mean confidence" in out


def test_models_lists_name_version_labels_and_metrics(env, capsys):
    code, out, err = run(capsys, "models", "--json")
    assert code == 0, err
    tiny = next(m for m in json.loads(out)["models"] if m["name"] == "tiny")
    assert tiny["labels"] == ["neg", "pos"] and len(tiny["version"]) == 16
    assert tiny["metrics"]["dev"]["accuracy"] > 0.8


def test_unknown_model_is_one_line_error_listing_installed(env, capsys, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    code, out, err = run(capsys, "predict", "--model", "nope", str(tmp_path / "in.txt"))
    assert code != 0 and out == ""
    assert err.startswith("error: unknown model 'nope'; installed: ") and "tiny" in err
    assert err.count("\n") == 1


def test_corrupt_artifact_is_a_clear_error_not_a_traceback(env, capsys, tmp_path):
    import shutil

    broken = env / "models" / "broken"
    shutil.copytree(env / "models" / "tiny", broken)
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    (tmp_path / "in.txt").write_text("hello\n")
    try:
        code, _, err = run(capsys, "predict", "--model", "broken", str(tmp_path / "in.txt"))
    finally:
        shutil.rmtree(broken)
    assert code != 0 and err.startswith("error: model artifact") and "Traceback" not in err
    assert err.count("\n") == 1


def test_missing_input_file_is_one_line_error(env, capsys, tmp_path):
    code, _, err = run(capsys, "predict", "--model", "tiny", str(tmp_path / "absent.jsonl"))
    assert code != 0 and "absent.jsonl" in err and err.count("\n") == 1


def test_predict_csv_row_with_bad_bytes_keeps_its_id_and_fails_alone(env, capsys, tmp_path):
    (tmp_path / "in.csv").write_bytes(b"id,text\nr1,great fun\nr2,\xff\xfe bad\nr3,\nr4,awful dull\n")
    code, out, err = run(capsys, "predict", "--model", "tiny", str(tmp_path / "in.csv"))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["label"], r.get("error")) for r in rows] == [
        ("r1", "pos", None),
        ("r2", None, "text is not valid UTF-8"),
        ("r3", None, "empty text field 'text'"),
        ("r4", "neg", None),
    ]


def test_merge_combines_artifacts_into_one_ensemble_and_refuses_other_tokenizers(env, tmp_path):
    import shutil

    from lstmq.errors import ArtifactError
    from lstmq.worker.ml.classifier.merge import merge

    tiny = env / "models" / "tiny"
    single = json.loads((tiny / "config.json").read_text())
    report = merge(tmp_path / "pair", [tiny, tiny], env / "dev.jsonl.gz", "merge-command")
    config = json.loads((tmp_path / "pair" / "config.json").read_text())
    assert config["architecture"]["members"] == 2 and config["training"]["command"].endswith("merge-command")
    assert report["accuracy"] == pytest.approx(single["metrics"]["dev"]["accuracy"], abs=1e-5)
    other = tmp_path / "other"
    shutil.copytree(tiny, other)
    (other / "tokenizer.json").write_text((tiny / "tokenizer.json").read_text() + " ")
    with pytest.raises(ArtifactError, match="tokenizer differs"):
        merge(tmp_path / "bad", [tiny, other], env / "dev.jsonl.gz", "x")


def test_merge_can_cut_the_vocabulary_to_its_most_frequent_words(env, tmp_path):
    import torch

    from lstmq.errors import InputError
    from lstmq.worker.ml.classifier.artifact import load_artifact
    from lstmq.worker.ml.classifier.merge import merge

    tiny = env / "models" / "tiny"
    source, source_tok, _ = load_artifact(tiny)
    assert source_tok.get_vocab_size() > 8
    merge(tmp_path / "cut", [tiny, tiny], env / "dev.jsonl.gz", "x", vocab_size=8)
    model, tok, config = load_artifact(tmp_path / "cut")
    assert config["architecture"]["vocab_size"] == 8 == tok.get_vocab_size()
    assert tok.get_vocab() == {w: i for w, i in source_tok.get_vocab().items() if i < 8}
    for member in model.members:  # the kept words keep their (fp16) rows
        assert torch.equal(member.embed.weight, source.members[0].embed.weight[:8])
    with pytest.raises(InputError, match="--vocab-size: a vocabulary needs more than the 2 special tokens"):
        merge(tmp_path / "tiny2", [tiny], env / "dev.jsonl.gz", "x", vocab_size=2)
