"""Training and evaluation data is read by the same readers as `submit`, plus a label field,
and one bad row stops the run with its FILE:LINE."""

from __future__ import annotations

import gzip

import pytest

from lstmq.errors import InputError
from lstmq.worker.ml.classifier.data import read_labelled

ROWS = [("great fun", "pos"), ("awful dull", "neg")]


@pytest.mark.parametrize(
    "name, data",
    [
        ("train.jsonl", b'{"text": "great fun", "label": "pos"}\n\n{"text": "awful dull", "label": "neg"}\n'),
        ("train.json", b'{"text": "great fun", "label": "pos"}\n{"text": "awful dull", "label": "neg"}\n'),
        ("train.csv", b'label,text\npos,great fun\n\nneg,"awful dull"\n'),
        ("train.tsv", b"text\tlabel\ngreat fun\tpos\nawful dull\tneg\n"),
        (
            "gzip-without-suffix.jsonl",
            gzip.compress(b'{"text": "great fun", "label": "pos"}\n{"text": "awful dull", "label": "neg"}\n'),
        ),
        ("bom.csv", "\ufefftext,label\ngreat fun,pos\nawful dull,neg\n".encode()),
    ],
)
def test_every_format_submit_reads_gives_the_same_rows(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    got = read_labelled(tmp_path / name)
    assert list(zip(got.texts, got.labels, strict=True)) == ROWS


def test_labels_may_be_numbers_and_fields_may_be_renamed(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"body": "great fun", "y": 1}\n{"body": "awful dull", "y": 0}\n')
    got = read_labelled(path, "body", "y")
    assert (got.texts, got.labels) == (["great fun", "awful dull"], ["1", "0"])


@pytest.mark.parametrize(
    "line, reason",
    [
        (b"{not json", "malformed JSON (Expecting property name enclosed in double quotes at column 2)"),
        (b'{"text": "x"}', "missing label field 'label'"),
        (b'{"text": "x", "label": ["a"]}', "label field 'label' must be a string or a number"),
        (b'{"label": "pos"}', "missing text field 'text'"),
        (b'{"text": "   ", "label": "pos"}', "empty text field 'text'"),
        (b'{"text": "caf\xe9", "label": "pos"}', "text is not valid UTF-8"),
    ],
)
def test_the_first_bad_row_stops_reading_with_file_line_and_reason(tmp_path, line, reason):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"text": "good", "label": "pos"}\n\n' + line + b'\n{"text": "good", "label": "neg"}\n')
    with pytest.raises(InputError) as stopped:
        read_labelled(path)
    assert str(stopped.value) == f"{path}:3: {reason}"


def test_a_csv_without_the_label_column_is_refused_as_a_whole(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,y\ngreat fun,pos\n")
    with pytest.raises(InputError, match=r"no column 'label' in the CSV header \(columns: text, y\)"):
        read_labelled(path)


def test_a_json_array_is_refused_with_how_to_convert_it(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[{"text": "great fun", "label": "pos"}]')
    with pytest.raises(InputError, match=r"a JSON array is not JSON Lines; convert it with: jq -c"):
        read_labelled(path)


def test_an_empty_file_has_no_rows(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n\n")
    with pytest.raises(InputError, match="no rows"):
        read_labelled(path)
