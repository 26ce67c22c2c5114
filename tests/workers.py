"""Real worker and beat processes for end-to-end tests, started as the Procfile starts them.

``start_worker`` runs the Procfile's ``worker`` line (honcho running ``Procfile.worker``: the
events worker and the peers worker); ``start_beat`` runs its ``beat`` line.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from adapters.broker import TASK_DISPATCH_PROVISIONING
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
# Celery's own lines about a task: "Task <name>[<id>] received", then "... succeeded in ...",
# "... retry: ...", "... raised unexpected: ..." and the like once that run of it has ended.
_TASK_LINE = re.compile(r"Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] (?P<word>\w+)")


def procfile_line(name: str) -> str:
    """The Procfile's command for a process type, as written."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise AssertionError(f"the Procfile has no {name} process")


def procfile_command(name: str) -> list[str]:
    """The Procfile's command for a process type, as a list of words."""
    return shlex.split(procfile_line(name))


def _tree(root: int) -> list[int]:
    """``root`` and every process descended from it (children first found through /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # the 4th field of /proc/<pid>/stat, after the command in parentheses, is the parent
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class CeleryProcess:
    """A Procfile process in its own session, its output kept for diagnosis."""

    def __init__(self, env: dict[str, str], args: Sequence[str], ready_marker: str, ready_count: int = 1) -> None:
        venv_bin = str(Path(sys.executable).parent)  # the Procfile names `celery`, `honcho`: the venv's
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.env["PATH"] = venv_bin + os.pathsep + self.env.get("PATH", "")
        self.args = list(args)
        self.ready_marker = ready_marker
        self.ready_count = ready_count
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.seen: list[int] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 60.0) -> CeleryProcess:
        self._ready.clear()
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise AssertionError(f"{' '.join(self.args[:3])} did not start:\n" + "\n".join(self.lines[-40:]))
        _started.append(self)
        self.seen = _tree(self.process.pid)  # killed at exit if still there, whatever became of the leader
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        seen = 0
        for line in process.stdout:
            self.lines.append(line.rstrip())
            if self.ready_marker in line:
                seen += 1
                if seen >= self.ready_count:
                    self._ready.set()

    def unfinished_tasks(self, name: str) -> int:
        """Runs of tasks called ``name`` this process has received and not yet ended.

        A delayed task (a countdown, an ETA) is received as soon as the broker hands it over and
        ends only after it ran, so this also counts those still waiting for their time.
        """
        received: Counter[str] = Counter()
        ended: Counter[str] = Counter()
        for line in list(self.lines):
            for found in _TASK_LINE.finditer(line):
                if found["name"] == name:
                    (received if found["word"] == "received" else ended)[found["id"]] += 1
        return sum(max(0, count - ended[task_id]) for task_id, count in received.items())

    def kill(self) -> None:
        """SIGKILL the process and everything it started: no cleanup, no acknowledgement."""
        if self.process and self.process.poll() is None:
            for pid in _tree(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Cold shutdown (SIGQUIT to each Celery process): tests need no graceful drain; then KILL what is left.

        The tree is read first: once the leader exits, its descendants belong to init and are
        no longer found under it.
        """
        if not self.process:
            return
        tree = _tree(self.process.pid) if self.process.poll() is None else []
        for pid in tree[1:] or tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        # the filesystem transport takes ~5 s to wind down; no test needs that
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1.5)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)


_started: list[CeleryProcess] = []


@atexit.register
def _no_process_outlives_the_tests() -> None:
    for started in _started:
        if started.process is not None and started.process.poll() is None:
            started.kill()
        for pid in started.seen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def start_worker(env: dict[str, str], concurrency: int = 2) -> CeleryProcess:
    """The Procfile's worker: the events worker (prefork, ``concurrency`` processes) and the peers worker."""
    command = procfile_command("worker")
    return CeleryProcess({**env, "WORKER_CONCURRENCY": str(concurrency)}, command, "ready.", ready_count=2).start()


def start_outgoing(env: dict[str, str]) -> CeleryProcess:
    """The Procfile's outgoing worker: Holdfast's own events to subscribers, on a queue of its own."""
    # Through a shell, as the platform runs it: the line sets a variable and expands another.
    return CeleryProcess(env, ["sh", "-c", procfile_line("outgoing")], "ready.").start()


def start_beat(env: dict[str, str]) -> CeleryProcess:
    return CeleryProcess(env, procfile_command("beat"), ready_marker="beat: Starting").start()


def watch_for_late_sends(workers: Sequence[CeleryProcess], seconds: float) -> None:
    """Let ``seconds`` pass, then wait until every dispatch task the workers received has ended.

    What could still call the provisioning API is a dispatch task: one queued at once (taken by a
    worker within milliseconds on Redis, within a second on the filesystem broker), a delayed one
    (received at once, run at its time) or one the sweep queues. Once the window has passed and no
    run of a dispatch task is under way or waiting for its time, a send that was coming has been
    made: the caller then asserts on what the API received.
    """
    quiet_from = time.monotonic() + seconds
    wait_for(
        lambda: (
            time.monotonic() >= quiet_from
            and all(worker.unfinished_tasks(TASK_DISPATCH_PROVISIONING) == 0 for worker in workers)
        ),
        timeout=seconds + 60,
        interval=0.25,
        what="the dispatch tasks the workers received to end",
    )
