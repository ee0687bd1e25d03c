"""`lstmq bench` is one group: its subcommands, their options, and configuration errors as one
`error:` line (a database that does not exist, a broker nobody listens on, a missing input)
before anything is trained, loaded or started."""

from __future__ import annotations

import socket
import uuid

import pytest

from lstmq.bench.cli import BENCH_COMMANDS, bench
from lstmq.cli import main
from tests.support.processes import run_lstmq

SUBCOMMANDS = [
    "end-to-end",
    "pipeline",
    "fairness",
    "model",
    "schedule",
    "status",
    "parquet",
    "quality",
    "reuse",
    "peer",
]
WITH_DATABASE = ["end-to-end", "pipeline", "fairness", "schedule", "status", "parquet"]
WITH_BROKER = ["end-to-end", "pipeline", "fairness", "schedule"]


def lstmq(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, err: str) -> str:
    """The single line of stderr, asserted to be an `error:` line of a failed command."""
    assert code != 0
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def closed_port() -> int:
    """A local port that nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_group_lists_exactly_its_subcommands(capsys):
    code, out, _ = lstmq(capsys, "bench", "--help")
    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:\n")[1].splitlines() if line.startswith("  ")]
    assert listed == sorted(SUBCOMMANDS)
    assert sorted(BENCH_COMMANDS) == sorted(SUBCOMMANDS)


def test_bench_alone_prints_the_group_help(capsys):
    _, out, err = lstmq(capsys, "bench")
    assert all(name in out + err for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(capsys, name):
    code, out, _ = lstmq(capsys, "bench", name, "--help")
    assert code == 0 and out.startswith(f"Usage: lstmq bench {name} ")


def test_only_end_to_end_takes_a_model_or_a_task():
    def option_names(name: str) -> set[str]:
        return {opt for param in bench.get_command(None, name).params for opt in param.opts}

    assert {"--model", "--task"} <= option_names("end-to-end")
    for name in ("pipeline", "fairness"):  # their model is the minimal classifier they train
        assert not {"--model", "--task", "--pipeline", "--fairness"} & option_names(name)
    assert "--window" in option_names("fairness") and "--window" not in option_names("pipeline")


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_a_database_that_does_not_exist_is_one_error_line(capsys, lstmq_env, pg_url, name):
    home = lstmq_env()
    missing = f"lstmq_no_such_{uuid.uuid4().hex[:8]}"
    url = pg_url.rsplit("/", 1)[0] + f"/{missing}"
    broker = ["--redis-url=filesystem://"] if name in WITH_BROKER else []  # a broker that is there
    code, _, err = lstmq(capsys, "bench", name, f"--database-url={url}", *broker)
    line = one_error_line(code, err)
    assert line.startswith("error: database postgresql") and f"/{missing} unreachable: " in line, line
    assert line.endswith(f'database "{missing}" does not exist'), line
    assert not list(home.glob("bench-*")), "nothing was started"


@pytest.mark.parametrize("name", WITH_BROKER)
def test_an_unreachable_broker_is_one_error_line(capsys, lstmq_env, tmp_path, name):
    home = lstmq_env()
    broker = f"redis://127.0.0.1:{closed_port()}/0"
    args = [f"--redis-url={broker}", f"--database-url=sqlite:///{tmp_path / 'b.db'}"]
    code, _, err = lstmq(capsys, "bench", name, *args)
    line = one_error_line(code, err)
    assert line.startswith(f"error: broker {broker} unreachable: ")
    assert not list(home.glob("bench-*")), "nothing was started"


@pytest.mark.parametrize(
    "args, message",
    [
        (["end-to-end", "--model=no-such-model"], "error: unknown model 'no-such-model'; installed: "),
        (["end-to-end", "--task=render", "--model=news"], "error: model 'news' is a classifier; task render needs"),
        (["model", "--models=news,no-such-model"], "error: unknown model 'no-such-model'; installed: "),
        (["end-to-end", "--input=/no/such/file.jsonl"], "error: /no/such/file.jsonl: no such file or directory"),
        (["pipeline", "--input=/no/such/file.jsonl"], "error: /no/such/file.jsonl: no such file or directory"),
        (["model", "--input=/no/such/file.jsonl"], "error: /no/such/file.jsonl: no such file or directory"),
        (["quality", "--data=/no/such/folder"], "error: --data /no/such/folder: no such folder"),
        (
            ["status", "--database-url=sqlite:///x.db"],
            "error: --database-url sqlite:///x.db: this bench needs PostgreSQL",
        ),
        (["pipeline", "--database-url=mysql://db/x"], "error: --database-url mysql://db/x: expected a URL of scheme"),
    ],
)
def test_other_configuration_errors_are_one_line(capsys, lstmq_env, args, message):
    lstmq_env()
    code, _, err = lstmq(capsys, "bench", *args)
    assert one_error_line(code, err).startswith(message)


def test_the_command_itself_prints_one_line_for_a_missing_database(lstmq_env, pg_url):
    """The whole process, as a user runs it: no traceback reaches the terminal."""
    lstmq_env()
    url = pg_url.rsplit("/", 1)[0] + "/lstmq_no_such_db"
    done = run_lstmq("bench", "pipeline", f"--database-url={url}", "--redis-url=filesystem://")
    err = done.stderr.decode()
    assert one_error_line(done.returncode, err).endswith('database "lstmq_no_such_db" does not exist')
    assert done.stdout == b""
