"""Readers turn files, folders and stdin into records, and name every bad one as FILE:LINE."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import tracemalloc

import pytest

from lstmq.errors import InputError
from lstmq.readers.formats import read_records
from lstmq.readers.records import MAX_TEXT_BYTES, Fields, Record, Rejected
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.readers.streams import MAX_LINE_BYTES, open_text_stream


def read(*inputs: str, fmt: str | None = None, fields: Fields = Fields(), stdin: bytes | None = None) -> list:
    stream = io.BytesIO(stdin) if stdin is not None else None
    return list(read_sources(resolve_sources([str(i) for i in inputs], fmt), fields, stdin=stream))


def texts(items) -> list[str]:
    return [item.text for item in items if isinstance(item, Record)]


def problems(items) -> list[str]:
    return [str(item) for item in items if isinstance(item, Rejected)]


def test_jsonl_records_carry_text_id_and_line_skipping_blank_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a", "id": 7}\n\n{"text": "b", "id": "x-1"}\n{"text": "c"}\n')
    items = read(path)
    assert [(r.text, r.external_id, r.line_no, r.record_no) for r in items] == [
        ("a", "7", 1, 0),
        ("b", "x-1", 3, 1),
        ("c", None, 4, 2),
    ]
    assert {r.source for r in items} == {str(path)}


@pytest.mark.parametrize(
    "line, reason",
    [
        (b'{"text": "a"', "malformed JSON (Expecting ',' delimiter at column 13)"),
        (b'["a"]', "not a JSON object"),
        (b'{"body": "a"}', "missing text field 'text'"),
        (b'{"text": 5}', "text field 'text' is not a string"),
        (b'{"text": "  "}', "empty text field 'text'"),
        (b'{"text": "a\\u0000b"}', "text contains a NUL character"),
        (b'{"text": "caf\xe9"}', "text is not valid UTF-8"),
        (b'{"text": "a", "id": true}', "id field 'id' must be a string or an integer"),
        (b'{"text": "a", "id": ""}', "empty id field 'id'"),
    ],
)
def test_each_bad_jsonl_record_is_reported_as_file_line_reason(tmp_path, line, reason):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "good"}\n' + line + b'\n{"text": "also good"}\n')
    items = read(path)
    assert problems(items) == [f"{path}:2: {reason}"]
    assert texts(items) == ["good", "also good"]


def test_gzip_is_detected_by_magic_bytes_whatever_the_name(tmp_path):
    for name in ("in.jsonl.gz", "in.jsonl"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(b'{"text": "zipped"}\n'))
        assert texts(read(path)) == ["zipped"]


def test_utf8_byte_order_mark_is_not_part_of_the_first_record(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("\ufefftext\nhello\n".encode())
    assert texts(read(path)) == ["hello"]


def test_csv_rows_start_where_their_quoted_text_starts(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,text\n1,"two\nlines"\n2,\n3,x,extra\n,no id\n')
    items = read(path)
    assert [(r.text, r.external_id, r.line_no) for r in items if isinstance(r, Record)] == [
        ("two\nlines", "1", 2),
        ("no id", None, 6),
    ]
    assert problems(items) == [f"{path}:4: empty text field 'text'", f"{path}:5: 3 fields, the header has 2"]


def test_csv_and_jsonl_honour_the_text_and_id_fields(tmp_path):
    (tmp_path / "a.csv").write_text("key,body\nk1,hello\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"key": 9, "body": "world"}) + "\n")
    items = read(tmp_path / "a.csv", tmp_path / "b.jsonl", fields=Fields(text="body", id="key"))
    assert [(r.text, r.external_id) for r in items] == [("hello", "k1"), ("world", "9")]


def test_csv_without_the_text_column_is_refused_as_a_whole(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,body\n1,x\n")
    with pytest.raises(InputError, match=r"no column 'text' in the CSV header \(columns: id, body\)"):
        read(path)


def test_txt_file_is_one_document_per_non_blank_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("first line\n\n   \nsecond line\r\n")
    items = read(path)
    assert [(r.text, r.line_no, r.external_id) for r in items] == [("first line", 1, None), ("second line", 4, None)]


def test_folder_is_one_document_per_txt_file_with_relative_path_ids(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("bee")
    (folder / "a.txt").write_text("ay")
    (folder / "sub" / "c.txt.gz").write_bytes(gzip.compress(b"sea"))
    (folder / "empty.txt").write_text("")
    (folder / "blob.txt").write_bytes(b"\x89PNG\x00\x00")
    (folder / ".hidden.txt").write_text("skip me")
    (folder / "notes.md").write_text("not txt")
    items = read(folder)
    assert [(r.external_id, r.text) for r in items if isinstance(r, Record)] == [
        ("a.txt", "ay"),
        ("b.txt", "bee"),
        ("sub/c.txt.gz", "sea"),
    ]
    assert problems(items) == [f"{folder}/blob.txt:1: binary file, not text", f"{folder}/empty.txt:1: empty file"]


def test_stdin_is_read_as_jsonl_by_default_and_may_be_gzipped():
    items = read("-", stdin=gzip.compress(b'{"text": "piped"}\nnope\n'))
    assert texts(items) == ["piped"]
    assert problems(items) == ["<stdin>:2: malformed JSON (Expecting value at column 1)"]


def test_stdin_format_can_be_given(tmp_path):
    assert texts(read("-", fmt="txt", stdin=b"one\ntwo\n")) == ["one", "two"]


@pytest.mark.parametrize(
    "setup, fmt, message",
    [
        (lambda p: None, None, "no such file or directory"),
        (
            lambda p: p.write_text("x"),
            None,
            "cannot tell the format from the name; pass --format (jsonl, csv, tsv, txt)",
        ),
        (lambda p: p.write_text("x"), "xml", "unknown format 'xml' (expected jsonl, csv, tsv, txt)"),
        (lambda p: p.mkdir(), "csv", "a folder is read as .txt files, not as csv"),
    ],
)
def test_unusable_inputs_are_refused_before_reading(tmp_path, setup, fmt, message):
    path = tmp_path / "input.dat"
    setup(path)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_sources([str(path)], fmt)


def test_binary_file_is_refused_with_one_line_before_any_input_is_read(tmp_path):
    good, binary = tmp_path / "first.jsonl", tmp_path / "weights.jsonl"
    good.write_text('{"text": "x"}\n')
    binary.write_bytes(gzip.compress(b"\x00\x01\x02" * 100))
    with pytest.raises(InputError, match=f"^{binary}: binary file, not text$"):
        resolve_sources([str(good), str(binary)])


def test_a_json_file_of_objects_is_read_as_json_lines(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('\n{"text": "a", "id": 1}\n{"text": "b"}\n')
    assert [(r.text, r.external_id, r.line_no) for r in read(path)] == [("a", "1", 2), ("b", None, 3)]


@pytest.mark.parametrize("name, fmt", [("data.json", None), ("data.jsonl", None), ("data", "jsonl")])
def test_a_json_array_is_refused_with_how_to_convert_it(tmp_path, name, fmt):
    path = tmp_path / name
    path.write_text('  [{"text": "a"},\n {"text": "b"}]\n')
    message = f"{path}: a JSON array is not JSON Lines; convert it with: jq -c '.[]' {path}"
    with pytest.raises(InputError) as refused:
        resolve_sources([str(path)], fmt)
    assert str(refused.value) == message


def test_a_json_array_on_stdin_is_refused_when_read():
    with pytest.raises(InputError, match=r"^<stdin>: a JSON array is not JSON Lines"):
        read("-", stdin=b'\n[{"text": "a"}]\n')


def test_tsv_is_told_by_extension_or_format_and_its_fields_may_hold_commas(tmp_path):
    (tmp_path / "in.tsv").write_text("id\ttext\nt1\tone, two\n\nt2\tthree\n")
    (tmp_path / "in.tab").write_text("text\tid\nfour\tt3\n")
    items = read(tmp_path / "in.tsv") + read(tmp_path / "in.tab", fmt="tsv")
    assert [(r.text, r.external_id, r.line_no) for r in items] == [
        ("one, two", "t1", 2),
        ("three", "t2", 4),
        ("four", "t3", 2),
    ]


def test_a_bad_record_keeps_its_id_for_outputs_that_answer_per_record(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,text\nr1,\nr2,\xff bad\n")
    assert [(r.external_id, r.reason) for r in read(path)] == [
        ("r1", "empty text field 'text'"),
        ("r2", "text is not valid UTF-8"),
    ]


def test_corrupt_gzip_midway_is_one_input_error(tmp_path):
    path = tmp_path / "in.jsonl.gz"
    data = gzip.compress(b'{"text": "x"}\n' * 50_000)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"^{path}: unreadable"):
        read(path)


def test_stdin_can_be_named_only_once():
    with pytest.raises(InputError, match="stdin"):
        resolve_sources(["-", "-"])


def test_readers_are_lazy_so_memory_is_bounded_by_one_record():
    endless = (b'{"text": "again"}\n' for _ in itertools.count())
    first = list(itertools.islice(read_records(endless, "endless", "jsonl"), 3))
    assert texts(first) == ["again"] * 3


LONG_TEXT = "word " * (MAX_TEXT_BYTES // 5 + 1)  # just over the cap, on a line under the line cap
OVERLONG = b"x" * (MAX_LINE_BYTES + 10)


@pytest.mark.parametrize("fmt", ["jsonl", "txt"])
def test_a_text_over_the_document_cap_is_rejected_and_its_neighbours_kept(tmp_path, fmt):
    path = tmp_path / f"in.{fmt}"
    lines = ["first", LONG_TEXT, "third"]
    path.write_text("".join((json.dumps({"text": t}) if fmt == "jsonl" else t) + "\n" for t in lines))
    items = read(path)
    assert texts(items) == ["first", "third"]
    assert problems(items) == [
        f"{path}:2: text of {len(LONG_TEXT):,} bytes, longer than the 1,048,576 a document may have"
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "txt", "csv"])
def test_a_line_over_the_line_cap_is_skipped_with_its_number(tmp_path, fmt):
    head = b"text\n" if fmt == "csv" else b""
    good = b'{"text": "%s"}\n' if fmt == "jsonl" else b"%s\n"
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(head + good % b"before" + OVERLONG + b"\n" + good % b"after")
    items = read(path)
    line = 3 if fmt == "csv" else 2
    assert texts(items) == ["before", "after"]
    assert problems(items) == [
        f"{path}:{line}: line of {len(OVERLONG) + 1:,} bytes, longer than the 8,388,608 a document's line may have"
    ]


def test_an_unclosed_csv_quote_does_not_gather_the_rest_of_the_file(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'text\n"open quote\n' + b"row\n" * (MAX_LINE_BYTES // 4 + 1))
    items = read(path)
    assert [item.reason for item in items if isinstance(item, Rejected)][0].startswith("malformed CSV (field larger")


def test_reading_an_overlong_line_holds_no_more_than_the_line_cap():
    stream = io.BytesIO(b"y" * (6 * MAX_LINE_BYTES) + b'\n{"text": "after"}\n')
    tracemalloc.start()
    try:
        items = list(read_records(open_text_stream(stream, "big"), "big", "jsonl"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert texts(items) == ["after"]
    assert peak < 3 * MAX_LINE_BYTES


def test_a_folder_file_over_the_document_cap_is_rejected_unread(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("short")
    (folder / "b.txt.gz").write_bytes(gzip.compress(b"z" * (4 * MAX_TEXT_BYTES)))  # a small zip bomb
    items = read(folder)
    assert texts(items) == ["short"]
    assert problems(items) == [f"{folder}/b.txt.gz:1: file longer than the 1,048,576 bytes a document may have"]
