"""docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine.

The compose file is validated against the Compose specification's JSON Schema (the schema
Docker Compose itself applies), and every `lstmq ...` / `celery -A ...` a container runs is
parsed by our own click CLI or imported, so a renamed command or option fails here instead of
in a container that restarts forever.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib

import click
import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement  # pytest's own dependency

from lstmq.cli import COMMANDS, cli
from lstmq.queue import make_celery
from lstmq.settings import Settings
from tests.support.processes import ROOT

SHARED = ROOT.parent / "shared"
COMPOSE_SCHEMA = SHARED / "compose" / "compose-spec.json"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SHELL_OPERATORS = {"&&", "||", ";", "|"}


# --- what the containers run -------------------------------------------------------------


def argv_of(value: str | list[str] | None) -> list[str]:
    """Compose's `command`/`entrypoint`: a list as is, a string split like a shell would."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else shlex.split(value)


def healthcheck_argvs(service: dict) -> list[list[str]]:
    """Each simple command in the healthcheck test (CMD list, or CMD-SHELL split on && ; |)."""
    test = service.get("healthcheck", {}).get("test")
    if not test or test == ["NONE"]:
        return []
    if isinstance(test, str):
        kind, rest = "CMD-SHELL", [test]
    else:
        kind, rest = test[0], test[1:]
    if kind == "CMD":
        return [rest]
    argvs: list[list[str]] = [[]]
    for token in shlex.split(" ".join(rest)):
        if token in SHELL_OPERATORS:
            argvs.append([])
        else:
            argvs[-1].append(token)
    return [argv for argv in argvs if argv]


def container_argvs() -> list[tuple[str, str, list[str]]]:
    """(service, where, argv) for everything a service's containers execute."""
    found = []
    for name, service in SERVICES.items():
        main = argv_of(service.get("entrypoint")) + argv_of(service.get("command"))
        if main:
            found.append((name, "command", main))
        found += [(name, "healthcheck", argv) for argv in healthcheck_argvs(service)]
    return found


def runs(program: str) -> list[tuple[str, str, list[str]]]:
    return [(name, where, argv) for name, where, argv in container_argvs() if argv[0] == program]


def case_id(case: tuple[str, str, list[str]]) -> str:
    name, where, argv = case
    return f"{name}-{where}:{' '.join(argv[:4])}"


def our_image_services() -> dict[str, dict]:
    return {name: svc for name, svc in SERVICES.items() if str(svc.get("image", "")).startswith("lstmq:")}


# --- parsing a command line the way `lstmq` would, without running it ----------------------


def parse_lstmq(args: list[str]) -> click.Context:
    """Resolve subcommands like click does, then parse the leaf command's options and values."""
    command, ctx = cli, click.Context(cli, info_name="lstmq")
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name, command, args = command.resolve_command(ctx, args)  # raises NoSuchCommand
        ctx = click.Context(command, info_name=name, parent=ctx)
    return command.make_context(ctx.info_name, list(args), parent=ctx.parent)


def missing_command_hint(args: list[str]) -> str:
    target = COMMANDS.get(args[0]) if args else None
    if target is None:
        return "it is not registered in lstmq.cli.COMMANDS"
    return f"lstmq.cli.COMMANDS maps it to {target}, which cannot be imported yet"


def usage_error(args: list[str]) -> str | None:
    """What `lstmq <args>` would refuse before running, or None when click accepts it."""
    try:
        with parse_lstmq(args):
            return None
    except click.exceptions.Exit as exc:  # --help / --version: parsed fine, asked to stop
        return None if exc.exit_code == 0 else f"exits {exc.exit_code}"
    except click.exceptions.NoSuchCommand as exc:
        return f"{exc.format_message()} ({missing_command_hint(args)})"
    except click.UsageError as exc:
        return exc.format_message()


@pytest.mark.parametrize("case", runs("lstmq"), ids=case_id)
def test_every_lstmq_command_in_compose_parses_with_our_cli(case):
    service, where, argv = case
    error = usage_error(argv[1:])
    assert error is None, f"service {service!r} {where} `{shlex.join(argv)}`: {error}"


@pytest.mark.parametrize("case", [c for c in runs("celery") if "-A" in c[2]], ids=case_id)
def test_celery_healthchecks_name_our_importable_app(case, tmp_path):
    # A fresh interpreter, as `celery -A` is: importing the app here would connect its
    # worker signal handlers inside the test session. Importing never contacts the broker.
    service, where, argv = case
    module_name = argv[argv.index("-A") + 1]
    check = f"import celery, {module_name} as m; assert isinstance(m.app, celery.Celery)"
    env = {**os.environ, "LSTMQ_HOME": str(tmp_path), "LSTMQ_BROKER_URL": "redis://redis:6379/0"}
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{service} {where}: {module_name}: {done.stderr.strip().splitlines()[-1:]}"


def test_flower_watches_our_redis_and_workers_send_it_events():
    flower = SERVICES["flower"]
    assert re.fullmatch(r"mher/flower:\d+\.\d+(\.\d+)?", flower["image"]), "pin the Flower image"
    assert "--broker=redis://redis:6379/0" in argv_of(flower["command"])
    assert make_celery(Settings(broker_url="redis://redis:6379/0")).conf.worker_send_task_events


def test_services_built_from_our_image_run_lstmq():
    for name, service in our_image_services().items():
        main = argv_of(service.get("entrypoint")) + argv_of(service.get("command"))
        assert main[:1] == ["lstmq"], f"{name} runs {main}; the image has no entrypoint, name lstmq"
        assert service["build"]["context"] == "."


def test_parse_lstmq_rejects_unknown_commands_and_options():
    """The checks above can fail: click's own errors surface for bad command lines."""
    assert "No such command 'upgrayedd'" in usage_error(["db", "upgrayedd"])
    assert "--no-such-option" in usage_error(["db", "upgrade", "--no-such-option"])
    assert "not registered" in usage_error(["no-such-command"])
    assert usage_error(["db", "upgrade"]) is usage_error(["--help"]) is None


# --- the compose file's structure ------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_validator():
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (only CI and developer machines have the compose schema)")
    schema = json.loads(COMPOSE_SCHEMA.read_text())  # ../shared present: a missing file fails
    # The schema declares draft-07 under a URL jsonschema does not recognise, so name it.
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_is_valid_against_the_compose_specification(compose_validator):
    errors = [f"{e.json_path}: {e.message}" for e in compose_validator.iter_errors(COMPOSE)]
    assert not errors, "\n".join(errors)


def test_compose_schema_rejects_what_docker_compose_would(compose_validator):
    unquoted_no = yaml.safe_load("services: {migrate: {image: x, restart: no}}")  # YAML 1.1: False
    misspelt = {"services": {"worker": {"image": "x", "comand": ["lstmq"]}}}
    assert not compose_validator.is_valid(unquoted_no)
    assert not compose_validator.is_valid(misspelt)


def test_depends_on_names_existing_services_with_conditions_they_can_meet():
    for name, service in SERVICES.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown service {target!r}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target} to be healthy: no check"
            if condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} must be one-shot for {name}"


def test_everything_that_uses_the_database_waits_for_the_migration():
    for name, service in our_image_services().items():
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    migrate = SERVICES["migrate"]
    assert argv_of(migrate["command"]) == ["lstmq", "db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_gpu_worker_reserves_an_nvidia_gpu_and_runs_on_cuda():
    devices = SERVICES["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and "gpu" in d["capabilities"] and d.get("count") in (1, "all") for d in devices
    )
    assert argv_of(SERVICES["worker"]["command"])[:4] == ["lstmq", "worker", "--device", "cuda"]
    assert SERVICES["worker"]["image"] == "lstmq:gpu"


def test_cpu_worker_runs_on_cpu_only_under_the_cpu_profile():
    cpu = SERVICES["worker-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert argv_of(cpu["command"])[:4] == ["lstmq", "worker", "--device", "cpu"]
    assert "deploy" not in cpu


def test_workers_share_the_image_and_model_volumes():
    named = set(COMPOSE["volumes"])
    for name in ("worker", "worker-cpu"):
        service = SERVICES[name]
        mounts = dict(volume.split(":", 1) for volume in service["volumes"])  # name -> path
        assert mounts == {"images": "/data/images", "models": "/data/models"}, name
        assert set(mounts) <= named
        assert service["environment"]["LSTMQ_IMAGE_DIR"] == "/data/images"
        assert service["environment"]["LSTMQ_MODEL_DIR"] == "/data/models"


def test_scheduler_and_cli_see_the_same_input_folder():
    """`schedule add --path` is checked in the cli container, read in the scheduler's."""
    mount = "${LSTMQ_INPUT_DIR:-./input}:/input:ro"
    assert mount in SERVICES["scheduler"]["volumes"] and mount in SERVICES["cli"]["volumes"]


def test_redis_appends_every_write_to_a_named_volume_and_postgres_keeps_its_data():
    redis, postgres = SERVICES["redis"], SERVICES["postgres"]
    assert argv_of(redis["command"]) == ["redis-server", "--appendonly", "yes"]
    assert "redis-data:/data" in redis["volumes"] and "redis-data" in COMPOSE["volumes"]
    assert healthcheck_argvs(redis) == [["redis-cli", "ping"]]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert healthcheck_argvs(postgres)[0][0] == "pg_isready"


def test_urls_point_at_the_compose_services_and_secrets_come_from_the_environment():
    env = SERVICES["worker"]["environment"]
    assert env["LSTMQ_BROKER_URL"] == "redis://${LSTMQ_REDIS_HOST:-redis}:6379/0"
    assert re.fullmatch(
        r"postgresql://lstmq:\$\{POSTGRES_PASSWORD[^}]*\}@\$\{LSTMQ_POSTGRES_HOST:-postgres\}"
        r":5432/lstmq",
        env["LSTMQ_DATABASE_URL"],
    )
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_the_api_listens_in_its_container_and_is_healthy_when_healthz_answers():
    api = SERVICES["api"]
    assert argv_of(api["command"])[:4] == ["lstmq", "serve", "--host", "0.0.0.0"]
    assert "http://127.0.0.1:8000/healthz" in " ".join(healthcheck_argvs(api)[0])
    assert api["ports"] == ["${LSTMQ_API_PUBLISH_ADDR:-127.0.0.1}:${LSTMQ_API_PORT:-8000}:8000"]
    assert {"images:/data/images:ro", "models:/data/models:ro"} <= set(api["volumes"])


def test_published_ports_listen_on_localhost_unless_configured():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert re.match(r"\$\{\w+:-127\.0\.0\.1\}:", port), f"{name} publishes {port} on every interface"


# --- the image -------------------------------------------------------------------------------


def dockerfile_arg(name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M).group(1)


def test_dockerfile_pins_torch_from_the_cpu_index_before_installing_the_project():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.M)
    assert dockerfile_arg("TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cpu"
    torch_at = DOCKERFILE.index('pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"')
    project_at = DOCKERFILE.index('pip install "/src[worker]"')
    assert torch_at < project_at
    assert "extra-index-url" not in DOCKERFILE  # would let pip pick PyPI's CUDA build


def test_dockerfile_torch_pin_matches_the_makefile_and_the_worker_extra():
    version = dockerfile_arg("TORCH_VERSION")
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(rf"^TORCH_SPEC \?= torch=={re.escape(version)}$", makefile, re.M)
    assert pinned, f"the Makefile's TORCH_SPEC differs from the Dockerfile's torch {version}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    torch_req = next(Requirement(r) for r in extras["worker"] if r.startswith("torch"))
    assert version in torch_req.specifier


def test_dockerfile_runs_as_a_non_root_user_with_data_under_the_volumes():
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "LSTMQ_IMAGE_DIR=/data/images" in DOCKERFILE and "LSTMQ_MODEL_DIR=/data/models" in DOCKERFILE


def test_dockerignore_keeps_local_state_out_but_not_what_the_build_installs():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".lstmq"} <= ignored
    assert not ignored & {"pyproject.toml", "README.md", "lstmq", "worker", "producer", "*"}
