"""The one wrapper for ``python -m lstmq ...`` subprocesses: workers, schedulers, one-shot commands.

A long-running one gets its own process group (so a kill reaches prefork children too) and a log
file that tests wait on; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60


def lstmq_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "lstmq", *args]


def worker_env(**settings: str) -> dict[str, str]:
    """This process's environment (its LSTMQ_* set by the ``lstmq_env`` fixture), plus overrides."""
    env = dict(os.environ)
    env.update({f"LSTMQ_{key.upper()}": str(value) for key, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"  # the log shows each line as it happens: tests wait on lines
    return env


def run_lstmq(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m lstmq ARGS`` to completion, in a fresh interpreter with this test's environment."""
    return subprocess.run(
        lstmq_argv(*args), input=stdin, capture_output=True, env=worker_env(), cwd=ROOT, timeout=timeout
    )


class LstmqProcess:
    """A running ``lstmq ARGS`` in its own process group, writing stdout and stderr to ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # closed in kill() and stop()
        self.proc = subprocess.Popen(
            lstmq_argv(*args), cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float, count: int = 1) -> None:
        """Wait until ``text`` appears ``count`` times in the log; fail at once if the process exits first."""

        def seen() -> bool:
            found = self.log().count(text) >= count
            if not found and self.proc.poll() is not None:
                raise AssertionError(f"lstmq exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return found

        wait_until(seen, timeout_s, lambda: f"{count}x {text!r} in {self.log_path.name}:\n{self.log()[-2000:]}")

    def pause(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole process group (no chance to ack or clean up)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout_s: float = 20) -> int:
        """Warm shutdown (SIGTERM), SIGKILL if it does not exit in time; returns the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode


class WorkerProcess(LstmqProcess):
    """``lstmq worker`` at log level info: its " ready." line says it consumes."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str):
        super().__init__(env, log_path, "worker", "--loglevel=info", *args)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> WorkerProcess:
        self.wait_for_log(" ready.", timeout_s)
        return self
