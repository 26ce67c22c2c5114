"""CPU time of processes, read from /proc (Linux; elsewhere there is nothing to read and
the CPU columns show nan).

Used to tell where each request's CPU goes on a machine whose cores are shared by the
server, PostgreSQL, Redis, the load generator, and whatever else runs there.
"""

from __future__ import annotations

import os
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
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        raw = _read(entry / "stat")
        if raw is None:
            continue
        head, _, rest = raw.rpartition(")")
        comm, fields = head.partition("(")[2], rest.split()
        # fields[0] is proc(5)'s field 3 (state): pgrp is field 5, utime stime cutime cstime 14-17
        seconds = sum(int(x) for x in fields[11:15]) / _TICKS
        pgrp = int(fields[2])
        if int(entry.name) == own:
            client = seconds
        elif pgrp in by_group:
            by_group[pgrp] += seconds
        elif _is_store(comm, entry, database):
            stores += seconds
    return CpuSnapshot(by_group, stores, client, _machine_busy())


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (every core, every process)."""
    first = (_read(_PROC / "stat") or "cpu 0 0 0 0 0 0 0 0").split("\n", 1)[0].split()
    values = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(values) - values[3] - values[4]) / _TICKS
