"""``lstmq drift``: has what a schedule's model sees changed since its reference run?"""

from __future__ import annotations

import json

import click

from lstmq.db.engine import ready_engine, session_scope
from lstmq.db.queries import find_job
from lstmq.drift import jobs_drift, schedule_drift
from lstmq.errors import InputError
from lstmq.quality import DEFAULT_PSI_THRESHOLD


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="SCHEDULE | --model M JOB_A JOB_B")
@click.option("--reference", type=int, metavar="RUN", help="The run to compare with [default: the first].")
@click.option("--model", help="Compare two jobs' results of this model.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, min_open=True),
    default=DEFAULT_PSI_THRESHOLD,
    show_default=True,
    help="PSI above which a run has drifted.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift(targets, reference, model, threshold, as_json) -> None:
    """Label mix and score histogram of each run against a reference, by population stability
    index (PSI); `drifted` when either is above the threshold."""
    with session_scope(ready_engine()) as session:
        if model is not None:
            if len(targets) != 2 or reference is not None:
                raise InputError(
                    "--model compares two jobs: lstmq drift --model M JOB_A JOB_B (JOB_A is the reference)"
                )
            found = jobs_drift(session, model, *(find_job(session, t).id for t in targets), threshold)
        else:
            if len(targets) != 1:
                raise InputError("name one schedule (or compare two jobs with --model M JOB_A JOB_B)")
            found = schedule_drift(session, targets[0], reference, threshold)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"reference {found['reference']}, drifted above PSI {found['threshold']}")
    click.echo(f"{'run':<34} {'docs':>6} {'label psi':>9} {'score psi':>9} {'expected':>8}  drifted")
    for run in found["runs"]:
        click.echo(_row(run))


def _row(run: dict) -> str:
    def number(value):
        return "-" if value is None else f"{value:.3f}"

    name = str(run.get("run", run["job_id"]))
    return (
        f"{name:<34} {run['documents']:>6} {number(run['label_psi']):>9} {number(run['score_psi']):>9} "
        f"{number(run['expected_accuracy']):>8}  {'yes' if run['drifted'] else 'no'}"
    )
