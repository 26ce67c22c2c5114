"""Real Celery worker (and beat) processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class CeleryProcess:
    """``celery -A tasks.worker <args>`` in its own process group, its output kept for diagnosis."""

    def __init__(self, env: dict[str, str], args: Sequence[str], ready_marker: str) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.args = list(args)
        self.ready_marker = ready_marker
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 60.0) -> CeleryProcess:
        self._ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise AssertionError(f"celery {self.args[0]} did not start:\n" + "\n".join(self.lines[-40:]))
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip())
            if self.ready_marker in line:
                self._ready.set()

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acknowledgement."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Cold shutdown (SIGQUIT): tests need no graceful drain; unacked tasks go back to the broker."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGQUIT)
            # the filesystem transport takes ~5 s to wind down; no test needs that
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1.5)
        if self.process:
            with contextlib.suppress(ProcessLookupError):  # whatever is left of the group (pool children)
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def start_worker(env: dict[str, str], concurrency: int = 2) -> CeleryProcess:
    return CeleryProcess(
        env,
        [
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{time.monotonic_ns()}@%h",
        ],
        ready_marker="ready.",
    ).start()


def start_beat(env: dict[str, str]) -> CeleryProcess:
    return CeleryProcess(env, ["beat", "--loglevel", "INFO"], ready_marker="beat: Starting").start()
