"""What every benchmark needs: its options, a fresh PostgreSQL database built by the real migrations,
a flushed Redis, processes of its own started and stopped as groups (the Procfile's lines, the
provisioning stand-in), a log folder, its header, its ratios and its verdict.

A run goes: ``begin`` (header, Ctrl-C handling), then ``logged_run`` around everything it starts
(``fresh_database``, ``flushed_redis``, ``children``; ``stage`` is all of them), then ``ratio`` and
``verdict``.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("HOLDFAST_FIXTURES", ROOT.parent / "shared" / "fixtures"))
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PROCFILE = ROOT / "Procfile"
PROCFILE_WORKER = ROOT / "Procfile.worker"  # what the Procfile's worker line (honcho) runs
READY = " ready."  # what a Celery worker logs once it takes tasks
# Variables that tune Holdfast: dropped from the environment so that the defaults apply.
TUNING = (
    "LOG_LEVEL",
    "HOLD_POLICY",
    "MAX_WEBHOOK_BYTES",
    "INBOX_SWEEP_AGE_SECONDS",
    "SWEEP_INTERVAL_SECONDS",
    "TICK_INTERVAL_SECONDS",
    "RECONCILE_INTERVAL_SECONDS",
    "RECONCILE_LOOKBACK_SECONDS",
    "TASK_MAX_RETRIES",
    "REDIS_TLS_VERIFY",
)
TUNING_PREFIXES = ("PROVISIONING_", "DYNAMICS_", "STRIPE_")


class BenchError(RuntimeError):
    """The benchmark could not be run; the message says why."""


# --- options ------------------------------------------------------------------------------------


def option_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of ``python -m bench.<module>``, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(prog=f"python -m bench.{module}", description=(doc or "").split("\n\n")[0])


def add_common_options(parser: argparse.ArgumentParser, *, redis_env: str, redis_db: int) -> None:
    """``--pg``, ``--redis`` (a database the benchmark may flush) and ``--keep-logs``."""
    parser.add_argument(
        "--pg",
        default=os.environ.get("HOLDFAST_BENCH_PG", DEFAULT_PG),
        help="an administrative PostgreSQL URL; a fresh database is created beside it (env HOLDFAST_BENCH_PG)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get(redis_env, f"redis://127.0.0.1:6379/{redis_db}"),
        help=f"a Redis database the benchmark may flush (env {redis_env}; default db {redis_db})",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the logs of the processes it starts (kept anyway on failure)"
    )


# --- PostgreSQL and Redis -----------------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str, prefix: str = "holdfast_bench") -> Iterator[str]:
    """A new database built by the real migrations; yields its URL (Heroku form) and drops it after."""
    from sqlalchemy import create_engine, make_url, text

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        raise BenchError(f"PostgreSQL at {admin_url} is not usable: {type(error).__name__}: {error}") from None
    try:
        url = make_url(admin_url).set(drivername="postgres", database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(database_url: str) -> None:
    """Build the schema with the real migrations, as the release phase (and tests/conftest.py) do."""
    from alembic import command
    from alembic.config import Config

    from bootstrap.settings import database_url_for_sqlalchemy

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["skip_logging"] = True
    config.attributes["url"] = database_url_for_sqlalchemy(database_url)
    command.upgrade(config, "head")


@contextmanager
def flushed_redis(url: str) -> Iterator[Any]:
    """A Redis database flushed before and after (what the run queued stays in it until then)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except Exception as error:
        raise BenchError(f"Redis at {url} is not usable: {type(error).__name__}: {error}") from None
    try:
        yield client
    finally:
        with suppress(Exception):
            client.flushdb()
        client.close()


def holdfast_env(
    base: Mapping[str, str],
    *,
    database_url: str,
    redis_url: str,
    instance_dir: Path,
    stripe_secret: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a Holdfast process on the benchmark's database and Redis, with fresh secrets."""
    return {
        **base,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STRIPE_WEBHOOK_SECRET": stripe_secret or "whsec_bench_" + secrets.token_hex(16),
        "ADMIN_API_TOKEN": "bench-" + secrets.token_hex(16),
        "HOLDFAST_INSTANCE_DIR": str(instance_dir),
        **extra,
    }


def clean_env() -> dict[str, str]:
    """This process's environment without Holdfast's tuning variables (their defaults apply) and addresses."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in TUNING and not k.startswith(TUNING_PREFIXES) and k not in ("DATABASE_URL", "REDIS_URL")
    }


def free_port() -> int:
    """A port of 127.0.0.1 free at this moment."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- processes ----------------------------------------------------------------------------------


class Child:
    """A process in its own process group (spared the terminal's Ctrl-C), its output in a log file,
    stopped as a group."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name, self.log_path = name, log_path
        with log_path.open("wb") as log:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                command,
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pgid(self) -> int:
        """The process group of the process and its children (the process's pid)."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for(self, marker: str, timeout: float) -> str:
        """Wait until ``marker`` appears in the output; return the line holding it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                if marker in line:
                    return line
            if not self.alive():
                raise BenchError(f"the {self.name} exited at start:\n{self.log_tail()}")
            time.sleep(0.1)
        raise BenchError(f"the {self.name} was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        """TERM the process group (a graceful stop), KILL whatever is left of it after ``grace`` seconds."""
        process, self.process = self.process, None
        if process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace)
        with suppress(ProcessLookupError):  # the leader is gone or stuck; no child outlives it
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def procfile_lines(procfile: Path = PROCFILE) -> dict[str, str]:
    """Each line's name and command, in the file's order."""
    lines = {}
    for line in procfile.read_text().splitlines():
        name, _, command = line.partition(":")
        if command.strip():
            lines[name] = command.strip()
    return lines


def procfile_line(name: str, procfile: Path = PROCFILE) -> str:
    """The command of the line named ``name``."""
    command = procfile_lines(procfile).get(name)
    if command is None:
        raise BenchError(f"{procfile.name} has no {name} line")
    return command


def start_command(name: str, command: str, env: Mapping[str, str], log_path: Path) -> Child:
    """A Procfile command as the platform runs it: by the shell, the venv's ``celery`` and ``gunicorn``
    first on PATH, its output unbuffered."""
    path = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return Child(name, ["/bin/sh", "-c", command], {**env, "PATH": path, "PYTHONUNBUFFERED": "1"}, log_path)


def start_line(
    name: str,
    env: Mapping[str, str],
    log_path: Path,
    *,
    procfile: Path = PROCFILE,
    ready: str | None = READY,
    timeout: float = 90.0,
) -> Child:
    """Start the line named ``name`` of ``procfile`` with ``env`` as a ``Child``, and wait until ``ready``
    is in its output (``None``: do not wait); stopped again when it never is."""
    child = start_command(f"{procfile.name}'s {name} line", procfile_line(name, procfile), env, log_path)
    if ready is not None:
        _wait_or_stop(child, ready, timeout)
    return child


def start_stand_in(log_dir: Path, kind: str = "fast") -> tuple[Child, str]:
    """The provisioning stand-in (``bench/release_server.py``) in a process of its own, and its URL once
    it listens."""
    child = Child(
        "provisioning stand-in",
        [sys.executable, "-m", "bench.release_server", "--kind", kind],
        {**clean_env(), "PYTHONUNBUFFERED": "1"},
        log_dir / "stand-in.log",
    )
    port = _wait_or_stop(child, "listening ", 30).split()[-1]
    return child, f"http://127.0.0.1:{port}/provision"


def _wait_or_stop(child: Child, marker: str, timeout: float) -> str:
    """The line of the child's output holding ``marker``; the child is stopped when it never comes."""
    try:
        return child.wait_for(marker, timeout)
    except BaseException:
        child.stop()
        raise


class Worker:
    """The Procfile's worker: each line of ``Procfile.worker`` (the events and the peers workers) as
    honcho starts it, each a child of its own, so that both are measured and stopped as groups.

    ``machine`` names the machine it runs on, as a dyno's hostname: its Celery node names (``@%h``),
    its children's names and its log files say it, so that several can run side by side.
    """

    def __init__(self, env: Mapping[str, str], log_dir: Path, machine: str | None = None) -> None:
        self.parts: list[Child] = []
        for kind, command in procfile_lines(PROCFILE_WORKER).items():
            if machine is None:
                name, log_path = f"{kind} worker", log_dir / f"{kind}.log"
            else:
                name, log_path = f"{kind}@{machine}", log_dir / f"{kind}-{machine}.log"
                command = command.replace("@%h", f"@{machine}")
            self.parts.append(start_command(name, command, env, log_path))

    @property
    def pgids(self) -> list[int]:
        return [part.pgid for part in self.parts]

    def wait_ready(self, timeout: float = 90.0) -> None:
        for part in self.parts:
            part.wait_for(READY, timeout)

    def alive(self) -> bool:
        return all(part.alive() for part in self.parts)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {part.name}\n{part.log_tail(lines)}" for part in self.parts)

    def stop(self, grace: float = 10.0) -> None:
        for part in self.parts:
            part.stop(grace)


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextmanager
def children() -> Iterator[list[Stoppable]]:
    """A list to put started processes in; each is stopped at the end, the last started first."""
    started: list[Stoppable] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()


# --- a run --------------------------------------------------------------------------------------


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    # The first Ctrl-C or TERM unwinds the run; later ones are ignored so that the clean-up
    # (stopping what it started, dropping the database, flushing Redis) is not cut short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def begin(title: str) -> None:
    """Progress lines as they come; Ctrl-C and TERM unwind the run; the header: machine and code."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # in order with stderr
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    print(
        f"Holdfast {title} benchmark — {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"code: {ROOT} at {revision()}")


def revision() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip() or "unknown"


@dataclass
class Run:
    """A run's log folder (removed at the end unless kept) and, when the run could not be made, its
    exit status: 2 (``BenchError``) or 130 (interrupted)."""

    log_dir: Path
    keep_logs: bool
    status: int | None = None
    began: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.began


@contextmanager
def logged_run(prefix: str, keep_logs: bool, started: str) -> Iterator[Run]:
    """Run the block with a log folder; a ``BenchError`` or Ctrl-C ends it with a sentence on stderr
    (``started``: what was stopped) and ``Run.status`` set. Logs are kept on any failure."""
    run = Run(Path(tempfile.mkdtemp(prefix=prefix)), keep_logs)
    try:
        yield run
    except BenchError as error:
        run.keep_logs = True
        print(f"bench: {error}", file=sys.stderr)
        run.status = 2
    except KeyboardInterrupt:
        run.keep_logs = True
        print(f"bench: interrupted; {started} stopped, database dropped, Redis flushed", file=sys.stderr)
        run.status = 130
    except Exception:
        run.keep_logs = True
        raise
    finally:
        if run.keep_logs:
            print(f"logs kept in {run.log_dir}")
        else:
            shutil.rmtree(run.log_dir, ignore_errors=True)


@dataclass
class Stage:
    """What a benchmark that starts processes runs on: its log folder, a fresh database, and the
    processes it started (append them: they are stopped as groups at the end)."""

    run: Run
    database_url: str
    redis_url: str
    redis: Any  # a client of the flushed Redis database
    started: list[Stoppable]

    def holdfast_env(self, **extra: str) -> dict[str, str]:
        """The environment of a Holdfast process on this stage: every tuning variable at its default, fresh
        secrets and a Dynamics webhook key; ``extra`` on top."""
        return holdfast_env(
            clean_env(),
            database_url=self.database_url,
            redis_url=self.redis_url,
            instance_dir=self.run.log_dir / "instance",
            DYNAMICS_WEBHOOK_KEY="bench-dyn-" + secrets.token_hex(8),
            **extra,
        )


@contextmanager
def stage(name: str, options: argparse.Namespace, started: str) -> Iterator[Stage]:
    """``logged_run``, ``fresh_database``, ``flushed_redis`` and ``children`` in one: after the block,
    ``stage.run.status`` is set when the run could not be made (``started``: what was stopped then)."""
    with (
        logged_run(f"holdfast-bench-{name}-", options.keep_logs, started=started) as run,
        fresh_database(options.pg, f"holdfast_bench_{name}") as database_url,
        flushed_redis(options.redis) as redis,
        children() as processes,
    ):
        yield Stage(run, database_url, options.redis, redis, processes)


# --- ratios and the verdict ---------------------------------------------------------------------


class Measured(Protocol):
    @property
    def variant(self) -> str: ...

    @property
    def round(self) -> int: ...

    @property
    def rate(self) -> float: ...


@dataclass(frozen=True)
class Ratio:
    """The median rate of one variant over another's, and the same ratio in each round."""

    value: float
    per_round: list[float]

    @property
    def rounds(self) -> str:
        return ", ".join(f"{r:.2f}" for r in self.per_round)


def ratio(measures: Sequence[Measured], top: str, bottom: str) -> Ratio:
    def median(variant: str) -> float:
        return statistics.median(m.rate for m in measures if m.variant == variant)

    per_round = [
        t.rate / b.rate
        for t in measures
        if t.variant == top
        for b in measures
        if b.variant == bottom and b.round == t.round
    ]
    return Ratio(median(top) / median(bottom), per_round)


def verdict(passed: bool, target: str, reasons: list[str]) -> int:
    """Print PASS or FAIL, the target and why it was missed; return the exit status (0 or 1)."""
    print(f"{'PASS' if passed else 'FAIL'}: target {target}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    return 0 if passed else 1
