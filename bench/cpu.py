"""CPU time of processes, read from /proc (Linux; elsewhere there is nothing to read and
the CPU columns show nan).

Used to tell where each request's CPU goes on a machine whose cores are shared by the
server, PostgreSQL, Redis, the load generator, and whatever else runs there: ``snapshot`` for
the ingestion benchmark; ``group_seconds``, ``postgres_seconds`` and ``machine_busy`` for the
release benchmark's coarser figures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by: each watched process group (the servers), the data stores
    (Redis, and the PostgreSQL processes that serve the benchmark's database or the cluster as
    a whole), this process (the load generator), and the whole machine."""

    groups: dict[int, float]
    stores: float
    client: float
    machine: float

    def others_since(self, start: CpuSnapshot) -> float:
        """CPU seconds used since ``start`` by processes that are not part of the benchmark."""
        ours = (
            sum(self.groups.values())
            - sum(start.groups.values())
            + (self.stores - start.stores)
            + (self.client - start.client)
        )
        return max(self.machine - start.machine - ours, 0.0)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:  # gone, or not ours to read
        return None


def _processes() -> Iterator[tuple[int, str, list[str]]]:
    """Every process readable now: its pid, its command name, and its stat fields after the name."""
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        raw = _read(entry / "stat")
        if raw is None:
            continue
        head, _, rest = raw.rpartition(")")
        yield int(entry.name), head.partition("(")[2], rest.split()


def _seconds(fields: list[str], *, reaped: bool = True) -> float:
    """utime + stime, and with ``reaped`` the reaped children's cutime + cstime, in seconds."""
    # fields[0] is proc(5)'s field 3 (state): utime stime cutime cstime are fields 14-17
    return sum(int(x) for x in fields[11 : 15 if reaped else 13]) / _TICKS


def _is_store(comm: str, pid_dir: Path, database: str) -> bool:
    if comm == "redis-server":
        return True
    if comm != "postgres":
        return False
    title = (_read(pid_dir / "cmdline") or "").replace("\0", " ")
    # A client backend's title names its database and its client ("127.0.0.1(5123)", "[local]");
    # the postmaster and the auxiliary processes (WAL writer, checkpointer, ...) serve everyone.
    is_backend = "(" in title or "[local]" in title
    return not is_backend or f" {database} " in title


def snapshot(groups: list[int], database: str) -> CpuSnapshot | None:
    """CPU of every process in ``groups`` (by process group id), of the stores, of this process.

    A process's reaped children count too (cutime), so a gunicorn worker recycled after
    max_requests is not lost: its time moves from itself to its master.
    """
    if not _PROC.is_dir():
        return None
    by_group = dict.fromkeys(groups, 0.0)
    stores = client = 0.0
    own = os.getpid()
    for pid, comm, fields in _processes():
        seconds = _seconds(fields)
        pgrp = int(fields[2])  # proc(5)'s field 5
        if pid == own:
            client = seconds
        elif pgrp in by_group:
            by_group[pgrp] += seconds
        elif _is_store(comm, _PROC / str(pid), database):
            stores += seconds
    return CpuSnapshot(by_group, stores, client, machine_busy())


def backend_seconds(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends of one database (not the server's shared processes)."""
    used = 0.0
    for pid, comm, fields in _processes():
        if comm == "postgres":
            title = (_read(_PROC / str(pid) / "cmdline") or "").replace("\0", " ")
            if f" {database} " in title:
                used += _seconds(fields, reaped=False)
    return used


def group_seconds(groups: list[int]) -> dict[int, float]:
    """CPU seconds used so far by the processes of each process group (reaped children included)."""
    used = dict.fromkeys(groups, 0.0)
    for _, _, fields in _processes():
        if int(fields[2]) in used:
            used[int(fields[2])] += _seconds(fields)
    return used


def postgres_seconds() -> float:
    """CPU seconds of every PostgreSQL process (the server may be shared: an upper bound for ours)."""
    return sum(_seconds(fields, reaped=False) for _, comm, fields in _processes() if comm == "postgres")


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (every core, every process)."""
    first = (_read(_PROC / "stat") or "cpu 0 0 0 0 0 0 0 0").split("\n", 1)[0].split()
    values = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(values) - values[3] - values[4]) / _TICKS
