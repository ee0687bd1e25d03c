"""The scheduler process: Celery beat with RedBeat, plus a small worker for the runs it fires.

``lstmq scheduler`` is a Celery worker that consumes only the ``lstmq.schedule`` queue and
runs beat in a thread (``BeatStep``). Beat uses RedBeat: its entries live in Redis and a Redis
lock lets one beat fire while the others wait, so starting two schedulers fires each entry
once. The lock holder derives the entries from the ``schedules`` table on every tick
(``sync_entries``): the database stays the one source of truth. After downtime a missed entry
is simply due, and fires once (RedBeat keeps one ``last_run_at`` per entry).

Runs stay correct even if two did fire: ``lstmq.producer.schedules.run`` serialises them in the
database. The corpus is read where the scheduler runs: only scheduler hosts need it mounted.
"""

from __future__ import annotations

import json
import logging
import threading

from celery import Celery, beat, bootsteps
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, get_redis
from sqlalchemy import func, select

from lstmq.db.engine import get_engine
from lstmq.db.schema import Schedule, ScheduleRun, as_utc
from lstmq.errors import ScheduleNotFound
from lstmq.producer.schedules.run import run_schedule
from lstmq.producer.schedules.timing import Timing
from lstmq.queue import make_celery
from lstmq.settings import Settings

log = logging.getLogger("lstmq.scheduler")

RUN_TASK = "lstmq.schedule_run"
SCHEDULE_QUEUE = "lstmq.schedule"
ENTRY_PREFIX = "lstmq-schedule:"
KEY_PREFIX = "lstmq:redbeat:"
TICK_MAX_S = 2.0  # beat wakes at least this often: picks up schedule changes, answers SIGTERM
LOCK_TIMEOUT_S = 30  # a standby takes over this long after a holder died without releasing
STOP_WAIT_S = 10.0


def make_scheduler_app(settings: Settings) -> Celery:
    app = make_celery(settings)
    app.conf.update(
        beat_scheduler="lstmq.producer.schedules.beat:DbRedBeatScheduler",
        beat_max_loop_interval=TICK_MAX_S,
        redbeat_redis_url=settings.broker,
        redbeat_redis_options={},
        redbeat_key_prefix=KEY_PREFIX,
        redbeat_lock_timeout=LOCK_TIMEOUT_S,
        task_routes={**app.conf.task_routes, RUN_TASK: {"queue": SCHEDULE_QUEUE}},
    )
    app.task(name=RUN_TASK, bind=True, acks_late=False, ignore_result=True)(run_task)
    app.steps["worker"].add(BeatStep)
    return app


def run_task(task, schedule_id: int) -> None:
    """What beat fires: one run. A lost message only waits for the next firing."""
    try:
        report = run_schedule(get_engine(), task.app, schedule_id, trigger="beat")
    except ScheduleNotFound:
        log.info("schedule %s was removed; nothing to run", schedule_id)
        return
    log.info(
        "schedule %s: %s, %d queued%s",
        report.schedule,
        report.state,
        report.scan.queued,
        f" ({report.error})" if report.error else "",
    )


def desired_entries(app: Celery) -> dict[str, RedBeatSchedulerEntry]:
    """One RedBeat entry per active schedule, by Redis key."""
    last_beat = (
        select(ScheduleRun.schedule_id, func.max(ScheduleRun.started_at).label("at"))
        .where(ScheduleRun.trigger == "beat")
        .group_by(ScheduleRun.schedule_id)
        .subquery()
    )
    query = (
        select(Schedule.id, Schedule.name, Schedule.every_s, Schedule.cron, Schedule.created_at, last_beat.c.at)
        .outerjoin(last_beat, last_beat.c.schedule_id == Schedule.id)
        .where(Schedule.paused.is_(False))
    )
    with get_engine().connect() as conn:
        rows = conn.execute(query).all()
    entries = (_entry(app, *row) for row in rows)
    return {entry.key: entry for entry in entries}


def _entry(app: Celery, sched_id: int, name: str, every_s, cron, created_at, last_run) -> RedBeatSchedulerEntry:
    timing = Timing(every_s=every_s, cron=cron)
    entry = RedBeatSchedulerEntry(
        name=ENTRY_PREFIX + name,
        task=RUN_TASK,
        schedule=timing.celery_schedule(),
        args=[sched_id],
        options={"queue": SCHEDULE_QUEUE, "expires": timing.message_expiry_s()},
        app=app,
    )
    # Used only when Redis lacks the entry (new, or Redis lost its data): the database knows
    # when beat last ran it, so a missed entry fires once and a new one waits one period.
    entry.last_run_at = as_utc(last_run or created_at)
    return entry


def sync_entries(app: Celery) -> None:
    """Make RedBeat's entries match the active schedules (add, drop, redefine)."""
    client, conf = get_redis(app), app.redbeat_conf
    ours = conf.key_prefix + ENTRY_PREFIX
    existing = {_text(k) for k in client.zrange(conf.schedule_key, 0, -1)}
    existing = {k for k in existing if k.startswith(ours)}
    wanted = desired_entries(app)
    for key in existing - wanted.keys():
        _drop(client, conf.schedule_key, key)
    for key, entry in wanted.items():
        if key not in existing or _stored_args(client, key) != entry.args:
            _drop(client, conf.schedule_key, key)  # a redefined entry starts from the database's time
            entry.save()


def _drop(client, schedule_key: str, key: str) -> None:
    with client.pipeline() as pipe:
        pipe.zrem(schedule_key, key)
        pipe.delete(key)
        pipe.execute()


def _stored_args(client, key: str) -> list | None:
    definition = client.hget(key, "definition")
    return json.loads(definition).get("args") if definition else None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DbRedBeatScheduler(RedBeatScheduler):
    """RedBeat whose entries follow the ``schedules`` table (only the lock holder ticks)."""

    def tick(self, min=min, **kwargs):
        try:
            sync_entries(self.app)
        except Exception:  # noqa: BLE001 - a database hiccup must not stop beat; next tick retries
            log.exception("scheduler: could not read schedules from the database")
        return super().tick(min=min, **kwargs)


class BeatThread(threading.Thread):
    """Beat inside the scheduler's worker; stopping it releases the RedBeat lock."""

    def __init__(self, app: Celery):
        super().__init__(name="lstmq-beat", daemon=True)
        self.service = beat.Service(app, scheduler_cls=DbRedBeatScheduler, max_interval=TICK_MAX_S)

    def run(self) -> None:
        self.service.app.set_current()
        self.service.start()

    def stop(self) -> None:
        holder = getattr(self.service.scheduler, "lock", None) is not None
        self.service.stop()
        # A standby is blocked waiting for the lock: nothing to release, don't wait for it.
        self.join(STOP_WAIT_S if holder else 0.1)


class BeatStep(bootsteps.StartStopStep):
    label = "lstmq beat"

    def create(self, w):
        return BeatThread(w.app)
