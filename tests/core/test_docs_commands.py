"""The Markdown users read: every ``lstmq ...`` and ``python -m ...`` command it shows exists, and
it names no tracker issue and no development machine's folder.

A command is taken from code blocks (shell ones, not Python, SQL, YAML or JSON) and from inline
code. For ``lstmq a b --x y`` the words ``a b`` are walked down the click groups: each must be a
subcommand while its parent is a group, a command's first word after that must be an option
unless the command takes arguments, every option it is given must be one of the command's, and
``lstmq a b --help`` must exit 0. For ``python -m mod ...``, ``python -m mod --help`` must exit 0.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lstmq.cli import cli

ROOT = Path(__file__).parents[2]
READ_BY_USERS = sorted(
    [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "lstmq/models").glob("*/MODEL_CARD.md"),
    ]
)
NOT_SHELL = {"python", "py", "sql", "yaml", "yml", "json", "toml", "html", "text"}  # text: diagrams, tables
FENCE = re.compile(r"^(`{3,})\s*(\S*)")
INLINE = re.compile(r"`([^`\n]+)`")
# "lstmq" as a command: not inside a path, a module name or an image tag (lstmq/, lstmq.x, lstmq:cpu),
# nor Python's `from lstmq import ...`
LSTMQ = re.compile(r"(?:^|(?<=[\s($;&|]))(?<!from )lstmq(?= )")
PYTHON_M = re.compile(r"(?:^|(?<=[\s($;&|/]))python3?\s+-m\s+([A-Za-z_][\w.]*)")
ENDS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "<", ")", "\\"}


@dataclass(frozen=True)
class Shown:
    where: str  # FILE:LINE
    text: str  # from the command word to the end of its line


def code_lines(path: Path):
    """(line number, text) of every shell code line and every inline code span of a page."""
    fence, shell = None, False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if match := FENCE.match(line.strip()):
            if fence is None:
                fence, shell = match.group(1), match.group(2).lower() not in NOT_SHELL
            elif line.strip() == fence:
                fence = None
            continue
        if fence is not None:
            if shell:
                yield number, re.sub(r"(^|\s)#.*", "", line)  # a comment is prose
        else:
            yield from ((number, span) for span in INLINE.findall(line))


def shown(pattern: re.Pattern) -> list[Shown]:
    return [
        Shown(f"{path.relative_to(ROOT)}:{number}", text[match.start() :])
        for path in READ_BY_USERS
        for number, text in code_lines(path)
        for match in pattern.finditer(text)
    ]


def words(text: str) -> list[str]:
    """The command's tokens, up to where its shell line goes on to something else."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in a placeholder: plain words will do
        tokens = text.split()
    taken = []
    for token in tokens[1:]:
        if token in ENDS or token.startswith((">", "2>", "|")):
            break
        taken.append(token.rstrip(");"))
    return taken


def walk(tokens: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """The subcommand path the tokens name, its command, and the tokens after it."""
    command, ctx, path = cli, click.Context(cli, info_name="lstmq"), []
    while isinstance(command, click.Group) and tokens and not tokens[0].startswith(("-", "[")):
        name = tokens[0]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"lstmq {' '.join(path)}: no command {name!r}"
        path.append(name)
        command, ctx, tokens = sub, click.Context(sub, parent=ctx, info_name=name), tokens[1:]
    return path, command, tokens


def option_names(tokens: list[str]) -> list[str]:
    names = []
    for token in tokens:
        name = token.strip("[]").split("=", 1)[0]
        if re.fullmatch(r"--?[A-Za-z][\w-]*", name):
            names.append(name)
    return names


LSTMQ_COMMANDS = shown(LSTMQ)
# each module once, with the first place it is shown
PYTHON_MODULES = sorted({PYTHON_M.match(s.text).group(1): s.where for s in reversed(shown(PYTHON_M))}.items())


def test_the_pages_show_commands_to_check():
    """The extraction finds the commands (a test that checks nothing proves nothing)."""
    assert len(LSTMQ_COMMANDS) > 100 and len({s.where.split(":")[0] for s in LSTMQ_COMMANDS}) > 10


@pytest.mark.parametrize("command", LSTMQ_COMMANDS, ids=lambda s: s.where)
def test_every_lstmq_command_in_the_docs_exists(command):
    path, leaf, rest = walk(words(command.text))
    takes_arguments = any(isinstance(p, click.Argument) for p in leaf.params) or isinstance(leaf, click.Group)
    if rest and not takes_arguments:
        assert rest[0].startswith(("-", "[", "<")), f"lstmq {' '.join(path)} takes no argument {rest[0]!r}"
    known = {opt for p in leaf.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    unknown = [name for name in option_names(rest) if name not in known | {"--help", "-h"}]
    assert not unknown, f"lstmq {' '.join(path)} has no option {', '.join(unknown)}"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("module", "where"), PYTHON_MODULES, ids=[m for m, _ in PYTHON_MODULES])
def test_every_python_module_in_the_docs_runs(module, where):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{where}: python -m {module} --help: {done.stderr[-500:]}"


INTERNAL = re.compile(r"\bissues? \d+|(?<![\w&/])#\d+\b|/work/", re.IGNORECASE)


@pytest.mark.parametrize("path", READ_BY_USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_what_users_read_names_no_tracker_issue_and_no_development_machine_folder(path):
    found = [
        f"{number}: {line.strip()[:120]}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert not found, "\n".join(found)
