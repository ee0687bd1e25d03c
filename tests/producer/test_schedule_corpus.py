"""File cursors: what a run reads of each file, decided from its cursor and a fresh stat."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from lstmq.producer.schedules.cursors import HEAD_BYTES, UNCHANGED, Cursor, FileStat, plan_read
from lstmq.producer.schedules.files import scan_file
from lstmq.readers.records import Fields
from lstmq.readers.streams import MAX_LINE_BYTES

HEAD = "h" * 64


def cursor(size=100, mtime=1, inode=7, offset=100, lines=10) -> Cursor:
    return Cursor(size, mtime, inode, offset, lines, HEAD, min(offset, HEAD_BYTES))


def same_head(_n):
    return HEAD


def other_head(_n):
    return "x" * 64


def test_a_file_without_cursor_is_read_from_the_start():
    assert plan_read(None, FileStat(10, 1, 7), same_head).reason == "new"


def test_an_unchanged_file_is_not_read_and_its_head_not_even_hashed():
    def must_not_hash(_n):
        raise AssertionError("opened an unchanged file's head")

    assert plan_read(cursor(), FileStat(100, 1, 7), must_not_hash) is UNCHANGED


def test_appended_lines_are_read_from_the_offset_with_line_numbers_going_on():
    plan = plan_read(cursor(), FileStat(150, 2, 7), same_head)
    assert (plan.reason, plan.start, plan.start_line, plan.include_tail) == ("appended", 100, 10, False)


def test_a_truncated_file_is_read_again_from_the_start():
    plan = plan_read(cursor(), FileStat(40, 2, 7), same_head)
    assert (plan.reason, plan.start, plan.start_line) == ("truncated", 0, 0)


def test_a_replaced_file_is_read_again_whether_its_inode_or_its_first_bytes_changed():
    assert plan_read(cursor(), FileStat(150, 2, 8), same_head).reason == "replaced"
    assert plan_read(cursor(), FileStat(150, 2, 7), other_head).reason == "replaced"


def test_a_file_rewritten_in_place_at_the_same_size_is_read_again():
    assert plan_read(cursor(), FileStat(100, 2, 7), same_head).reason == "rewritten"


def test_an_unterminated_last_line_is_taken_once_the_file_stopped_changing():
    held_back = cursor(size=120, offset=100)
    plan = plan_read(held_back, FileStat(120, 1, 7), same_head)
    assert (plan.reason, plan.start, plan.include_tail) == ("settled", 100, True)


def test_a_gzip_file_is_read_whole_whenever_it_changes():
    plan = plan_read(cursor(), FileStat(150, 2, 7), same_head, whole_file=True)
    assert (plan.reason, plan.start, plan.include_tail) == ("replaced", 0, True)


# --- scanning real files ------------------------------------------------------------------


def jsonl(*texts: str) -> str:
    return "".join(json.dumps({"text": t}) + "\n" for t in texts)


def texts(scan) -> list[str]:
    return [r.text for r in scan.records]


def rescan(path: Path, previous):
    return scan_file(str(path), previous.cursor, None, Fields())


def test_scanning_reads_only_what_was_appended_and_numbers_lines_in_the_file(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("one", "two"))
    first = scan_file(str(path), None, None, Fields())
    with path.open("a") as fh:
        fh.write(jsonl("three"))
    second = rescan(path, first)
    assert texts(first) == ["one", "two"] and texts(second) == ["three"]
    assert [r.line_no for r in second.records] == [3]
    assert rescan(path, second).plan is UNCHANGED


def test_an_unchanged_file_costs_one_stat_and_is_never_opened(tmp_path, monkeypatch):
    import lstmq.producer.schedules.files as scanning

    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("one"))
    first = scan_file(str(path), None, None, Fields())

    def no_open(*_args, **_kwargs):
        raise AssertionError("opened an unchanged file")

    monkeypatch.setattr(scanning, "open", no_open, raising=False)
    assert rescan(path, first).plan is UNCHANGED


def test_a_half_written_line_waits_for_its_newline_or_for_the_file_to_settle(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("one") + '{"text": "tw')
    first = scan_file(str(path), None, None, Fields())
    assert texts(first) == ["one"] and not first.rejected
    with path.open("a") as fh:
        fh.write('o"}')  # still no newline: complete JSON, but the writer may go on
    second = rescan(path, first)
    assert texts(second) == [] and not second.rejected
    third = rescan(path, second)  # unchanged since: the last line is complete
    assert texts(third) == ["two"] and third.records[0].line_no == 2
    assert rescan(path, third).plan is UNCHANGED


def test_a_truncated_file_is_read_from_its_first_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("one", "two", "three"))
    first = scan_file(str(path), None, None, Fields())
    path.write_text(jsonl("four"))
    again = rescan(path, first)
    assert again.plan.reason == "truncated" and texts(again) == ["four"] and again.records[0].line_no == 1


def test_a_replaced_file_is_read_from_its_first_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("one"))
    first = scan_file(str(path), None, None, Fields())
    new = tmp_path / "new.jsonl"
    new.write_text(jsonl("uno", "dos", "tres"))
    os.replace(new, path)
    again = rescan(path, first)
    assert again.plan.reason == "replaced" and texts(again) == ["uno", "dos", "tres"]


def test_csv_rows_appended_later_are_parsed_with_the_header(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,text\n1,alpha\n")
    first = scan_file(str(path), None, None, Fields())
    with path.open("a") as fh:
        fh.write("2,beta\n")
    second = rescan(path, first)
    assert [(r.external_id, r.text, r.line_no) for r in second.records] == [("2", "beta", 3)]


def test_corrupt_records_are_rejected_with_their_file_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("fine") + "{not json\n" + json.dumps({"body": "x"}) + "\n")
    scan = scan_file(str(path), None, None, Fields())
    assert texts(scan) == ["fine"]
    assert [str(r).split(": ", 1)[0] for r in scan.rejected] == [f"{path}:2", f"{path}:3"]
    assert "malformed JSON" in str(scan.rejected[0]) and "missing text field" in str(scan.rejected[1])


def test_a_gzip_file_is_read_whole_and_again_when_replaced(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl("one", "two").encode()))
    first = scan_file(str(path), None, None, Fields())
    assert texts(first) == ["one", "two"] and rescan(path, first).plan is UNCHANGED
    path.write_bytes(gzip.compress(jsonl("one", "two", "three").encode()))
    assert texts(rescan(path, first)) == ["one", "two", "three"]


def test_a_deleted_or_unreadable_file_is_a_problem_not_an_error(tmp_path):
    gone = scan_file(str(tmp_path / "gone.jsonl"), None, None, Fields())
    assert gone.problem.endswith("gone.jsonl: deleted") and gone.cursor is None
    locked = tmp_path / "locked.jsonl"
    locked.write_text(jsonl("x"))
    locked.chmod(0)
    try:
        scan = scan_file(str(locked), None, None, Fields())
    finally:
        locked.chmod(0o644)
    if os.geteuid() != 0:  # root reads anything
        assert "cannot read" in scan.problem and scan.cursor is None


def test_an_overlong_appended_line_is_rejected_and_the_cursor_moves_past_it(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl("one"))
    first = scan_file(str(path), None, None, Fields())
    with path.open("ab") as fh:
        fh.write(b"z" * (MAX_LINE_BYTES + 5) + b"\n" + jsonl("three").encode())
    second = rescan(path, first)
    assert texts(second) == ["three"] and second.records[0].line_no == 3
    assert [str(r).split(": ", 1) for r in second.rejected] == [
        [
            f"{path}:2",
            f"line of {MAX_LINE_BYTES + 6:,} bytes, longer than the {MAX_LINE_BYTES:,} a document's line may have",
        ]
    ]
    assert second.cursor.offset == path.stat().st_size
