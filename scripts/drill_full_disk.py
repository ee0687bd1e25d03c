"""Fault drill: the image folder fills up in the middle of a render job, then space comes back.

Run as root (it mounts a tmpfs as the image folder), from the repository root, with the
project's virtual environment:

    sudo .venv/bin/python scripts/drill_full_disk.py --full-for 600

What it does: creates its own PostgreSQL database and starts its own redis-server (no
persistence, a free port), runs ``lstmq db upgrade``, starts one worker on the render queue,
submits a render job of N captions with the shipped ``shapes`` model, and as soon as the first
PNG lands fills the tmpfs with a filler file, keeps it full for ``--full-for`` seconds (topping
the filler up every second), deletes the filler and waits for the job to finish. It prints the
documents done and failed, the batches sent, the receipts (deliveries of a batch to a worker)
in total and per batch, the worker's retry log lines and the wall time; it exits 1 when a
document failed or the job did not finish in time.

How receipts are counted: workers add 1 to ``batches.receipts`` each time they take a batch,
and delete the row when the batch is finished, so the table alone cannot be read afterwards.
The drill adds a trigger to its own database that copies every insert and update of a
``batches`` row into ``drill_batch_log``; a batch's receipts are the highest value logged for
it. The number of ``Task lstmq.render[...] received`` lines in the worker's log is printed
beside it as a cross-check.

Everything is undone in ``finally``: the worker and redis-server are stopped, the tmpfs is
unmounted, the database dropped and the work folder removed (``--keep`` keeps the folder, with
the worker's log).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan", "white")
SHAPES = ("circle", "square", "triangle", "diamond")
PLACES = ("in the center", "at the top left", "on the right", "at the bottom", "at the top", "on the left")
SIZES = ("", "small ", "large ")
RETRY_LINES = ("batch waits for its retry", "cannot write images")
RECEIPT_LOG = """
CREATE TABLE drill_batch_log (batch_id bigint, receipts int, sends int, at timestamptz DEFAULT now());
CREATE FUNCTION drill_log_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO drill_batch_log (batch_id, receipts, sends) VALUES (NEW.id, NEW.receipts, NEW.sends);
    RETURN NEW;
END $$;
CREATE TRIGGER drill_log_batch AFTER INSERT OR UPDATE ON batches
    FOR EACH ROW EXECUTE FUNCTION drill_log_batch();
"""


def log(message: str) -> None:
    click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def captions(path: Path, n: int) -> None:
    with path.open("w") as out:
        for i in range(n):
            text = f"a {SIZES[i % 3]}{COLOURS[i % 8]} {SHAPES[i // 8 % 4]} {PLACES[i // 32 % 6]}"
            out.write(json.dumps({"id": f"caption-{i:05d}", "text": text}) + "\n")


def fill(folder: Path) -> None:
    """Write to ``folder/filler`` until the file system refuses another byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    chunk = b"\0" * (1 << 20)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def pngs(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.png"))


def job_counts(db: psycopg.Connection, job_id: str) -> tuple[str, dict[str, int]]:
    state = db.execute("SELECT state FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]
    rows = db.execute("SELECT status, count(*) FROM documents WHERE job_id = %s GROUP BY status", (job_id,))
    return state, dict(rows.fetchall())


def receipts(db: psycopg.Connection) -> list[tuple[int, int, int]]:
    """(batch id, receipts, sends) of every batch the job had, from the trigger's log."""
    rows = db.execute("SELECT batch_id, max(receipts), max(sends) FROM drill_batch_log GROUP BY batch_id")
    return rows.fetchall()


def stop(proc: subprocess.Popen | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {proc.pid}) ignored SIGTERM for 30 s: killing it")
        proc.kill()
        proc.wait()


@click.command()
@click.option("--full-for", default=600, show_default=True, help="Seconds the image folder stays full.")
@click.option("--documents", default=5000, show_default=True, help="Captions in the render job.")
@click.option("--size-mib", default=32, show_default=True, help="Size of the tmpfs (each PNG takes a 4 KiB page).")
@click.option("--concurrency", default=2, show_default=True, help="The worker's --concurrency.")
@click.option("--pg", default="postgresql://postgres@127.0.0.1:5432", show_default=True, help="PostgreSQL server.")
@click.option("--database", default="drill_disk", show_default=True, help="Database created and dropped.")
@click.option("--timeout", default=900, show_default=True, help="Seconds the job may take once space is back.")
@click.option("--keep", is_flag=True, help="Keep the work folder (worker log, captions).")
def main(full_for, documents, size_mib, concurrency, pg, database, timeout, keep) -> None:
    """Fill the image folder during a render job and count what it costs (run as root)."""
    if os.geteuid() != 0:
        raise click.ClickException("run as root: the drill mounts a tmpfs as the image folder")
    work = Path(tempfile.mkdtemp(prefix="lstmq-drill-disk-"))
    images, worker_log = work / "images", work / "worker.log"
    images.mkdir()
    port = free_port()
    env = os.environ | {
        "LSTMQ_HOME": str(work / "home"),
        "LSTMQ_IMAGE_DIR": str(images),
        "LSTMQ_DATABASE_URL": f"{pg}/{database}",
        "LSTMQ_BROKER_URL": f"redis://127.0.0.1:{port}/0",
    }
    admin = psycopg.connect(f"{pg}/postgres", autocommit=True)
    redis = worker = None
    mounted = created = ok = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(images)], check=True)
        mounted = True
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
        created = True
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=work,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run([PYTHON, "-m", "lstmq", "db", "upgrade"], env=env, check=True, capture_output=True)
        db = psycopg.connect(f"{pg}/{database}", autocommit=True)
        db.execute(RECEIPT_LOG)
        with worker_log.open("w") as out:
            argv = [PYTHON, "-m", "lstmq", "worker", "-Q", "lstmq.render", "-c", str(concurrency), "--threads", "1"]
            worker = subprocess.Popen(argv, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
        log(f"worker pid {worker.pid}, redis-server pid {redis.pid} on port {port}, database {database}")

        captions(work / "captions.jsonl", documents)
        started = time.monotonic()
        submitted = subprocess.run(
            [PYTHON, "-m", "lstmq", "submit", str(work / "captions.jsonl"), "--task", "render", "--model", "shapes"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        job_id = submitted.stdout.split()[-1]
        log(f"submitted job {job_id}: {documents:,} captions")

        deadline = time.monotonic() + 300
        while pngs(images) == 0:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise click.ClickException(f"no image written within 300 s; see {worker_log} (use --keep)")
            time.sleep(0.05)
        fill(images)
        full_at = time.monotonic()
        log(f"image folder full ({pngs(images)} PNGs written before); keeping it full for {full_for} s")
        next_report = full_at + 60
        while time.monotonic() - full_at < full_for:
            time.sleep(1)
            fill(images)  # whatever a worker's failed write freed is taken again
            if time.monotonic() >= next_report:
                next_report += 60
                state, counts = job_counts(db, job_id)
                log(f"full for {time.monotonic() - full_at:.0f} s: job {state} {counts}")
        (images / "filler").unlink()
        freed_at = time.monotonic()
        log("filler deleted: space is back")

        while True:
            state, counts = job_counts(db, job_id)
            if state == "finished":
                break
            if time.monotonic() - freed_at > timeout:
                raise click.ClickException(f"job {job_id} not finished {timeout} s after space came back: {counts}")
            if worker.poll() is not None:
                raise click.ClickException(f"the worker exited ({worker.returncode}); see {worker_log}")
            time.sleep(1)
        finished_at = time.monotonic()

        status = subprocess.run(
            [PYTHON, "-m", "lstmq", "status", job_id, "--json"], env=env, check=True, capture_output=True, text=True
        )
        final = json.loads(status.stdout)
        batches = receipts(db)
        total_receipts = sum(r for _, r, _ in batches)
        lines = worker_log.read_text(errors="replace").splitlines()
        print(f"job {job_id}: {final['state']}, {final['total']:,} documents")
        print(f"documents done:               {final['done']:,}")
        print(f"documents failed:             {final['failed']:,}")
        print(
            f"batches sent:                 {len(batches)} (publications, re-sends included: {sum(s for *_, s in batches)})"
        )
        print(f"receipts (batches.receipts):  {total_receipts}")
        print(
            f"receipts per batch:           {total_receipts / max(1, len(batches)):.2f} (most for one batch: {max((r for _, r, _ in batches), default=0)})"
        )
        print(
            f"'received' lines in log:      {sum('Task lstmq.render[' in line and ' received' in line for line in lines)}"
        )
        for text in RETRY_LINES:
            print(f"log lines '{text}': {sum(text in line for line in lines)}")
        print(f"reconciler re-sends in log:   {sum('re-sent its' in line for line in lines)}")
        print(f"image folder full for:        {freed_at - full_at:.0f} s")
        print(f"finished after space came back: {finished_at - freed_at:.1f} s")
        print(f"wall time (submit to finished): {finished_at - started:.0f} s")
        ok = final["failed"] == 0 and final["done"] == documents
    finally:
        stop(worker, "worker")
        stop(redis, "redis-server")
        if mounted:
            subprocess.run(["umount", str(images)], check=False)
        if created:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
