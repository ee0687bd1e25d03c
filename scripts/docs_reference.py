"""MkDocs hook: the reference pages are generated at build time, never written by hand.

A page holding ``<!-- reference:cli -->`` gets every ``lstmq`` command from the click group
(``lstmq.cli``), including the lazily loaded ones; a page holding ``<!-- reference:http-api -->``
gets every route of the FastAPI app's OpenAPI document (``create_app().openapi()``), with the
fields of its responses, read the way the console's ``/api/docs`` reads them. Nothing is fetched
from a network and no server is started.
"""

from __future__ import annotations

import inspect

import click
from mkdocs.exceptions import PluginError

CLI_MARKER = "<!-- reference:cli -->"
API_MARKER = "<!-- reference:http-api -->"


def on_page_markdown(markdown: str, **_kwargs) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, http_api_reference())
    return markdown


# ----- the CLI ---------------------------------------------------------------------------------


def cli_reference() -> str:
    from lstmq.cli import cli

    return "\n".join(_command_section(cli, click.Context(cli, info_name="lstmq")))


def _command_section(command: click.Command, ctx: click.Context):
    depth = min(ctx.command_path.count(" ") + 1, 4)
    yield f"{'#' * (depth + 1)} {ctx.command_path}\n"
    yield _help_text(command) + "\n"
    yield f"```\n{command.get_usage(ctx).strip()}\n```\n"
    yield from _options_table(command, ctx)
    if isinstance(command, click.Group):
        for name in _subcommand_names(command, ctx):
            sub = command.get_command(ctx, name)
            yield from _command_section(sub, click.Context(sub, parent=ctx, info_name=name))


def _subcommand_names(group: click.Group, ctx: click.Context) -> list[str]:
    """Every name the group declares, failing the build for one that does not load (the lazy
    groups drop a command whose module is missing: the reference must not drop it silently)."""
    names = sorted(getattr(group, "commands_map", None) or group.list_commands(ctx))
    missing = [name for name in names if group.get_command(ctx, name) is None]
    if missing:
        raise PluginError(f"{ctx.command_path}: commands that do not load: {', '.join(missing)}")
    return names


def _help_text(command: click.Command) -> str:
    text = inspect.cleandoc(command.help or command.short_help or "")
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b")


def _options_table(command: click.Command, ctx: click.Context):
    rows = [
        record
        for param in command.get_params(ctx)
        if isinstance(param, click.Option) and (record := param.get_help_record(ctx))
    ]
    if rows:
        yield "| option | meaning |\n|---|---|"
        yield from (f"| {_cell(f'`{opts}`')} | {_cell(text)} |" for opts, text in rows)
        yield ""


def _cell(text: str) -> str:
    """One table cell: on one line, its pipes escaped outside code spans (inside them a table
    leaves pipes alone, and a backslash would show)."""
    parts = " ".join(text.split()).split("`")
    return "`".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


# ----- the HTTP API ----------------------------------------------------------------------------


def http_api_reference() -> str:
    from lstmq.api.app import create_app
    from lstmq.api.console.apidocs import operations

    spec = create_app().openapi()
    return "\n".join(line for op in operations(spec) for line in _operation_section(op))


def _operation_section(op: dict):
    from lstmq.api.console.apidocs import values

    yield f"### {op['method']} {op['path']}\n"
    if op["summary"]:
        yield op["summary"] + "\n"
    if op["parameters"]:
        yield "| parameter | in | takes | required | meaning |\n|---|---|---|---|---|"
        for p in op["parameters"]:
            default = p.get("schema", {}).get("default")
            meaning = p.get("description", "") + (f" Default: `{default}`." if default is not None else "")
            required = "yes" if p.get("required") else ""
            yield f"| `{p['name']}` | {p['in']} | {_cell(values(p.get('schema')))} | {required} | {_cell(meaning)} |"
        yield ""
    for response in op["responses"]:
        yield f"**{response['status']}** {response['description']}".rstrip() + "\n"
        for media in response["media"]:
            note = f": {media['note']}" if media["note"] else ""
            yield f"`{media['type']}`{_cell(note)}\n"
            if media["fields"]:
                yield "| field | type | meaning |\n|---|---|---|"
                yield from (
                    f"| `{f['name']}` | {_cell(f['type'])} | {_cell(f['description'])} |" for f in media["fields"]
                )
                yield ""
