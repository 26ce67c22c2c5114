"""Every benchmark in one run, one after another, and a summary of their verdicts.

    .venv/bin/python -m bench                    # every benchmark (about half an hour)
    .venv/bin/python -m bench latency memory     # some of them
    .venv/bin/python -m bench --list

Each runs as its own process (``python -m bench.<name>``) with its defaults, its output shown
as it comes; the summary repeats each one's ratios and its PASS or FAIL line. The exit status
is 0 when every one passed, 1 when one missed its target, and 2 when one could not be run.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = {
    "ingest": "webhook ingestion against a verify-and-insert floor",
    "release": "a release of 1,000 orders against a plain requests loop",
    "latency": "from a hold's release to the provisioning of the order that waited",
    "throughput": "events processed per second against Celery's no-op tasks",
    "memory": "resident memory of web and worker processes over two laps of work",
    "scale_out": "two worker machines against one, releasing 100 accounts' orders at once",
    "outgoing": "holds and other subscribers while a subscriber hangs",
    "what_if": "a candidate policy over 100,000 accounts",
    "flat_cost": "cost per event on 100,000 accounts and 1,000,000 inbox rows against a small book",
    "retention": "webhooks while a purge of 1,000,000 inbox rows runs",
}


def main(argv: list[str]) -> int:
    if "--list" in argv or "-h" in argv or "--help" in argv:
        print(__doc__)
        for name, what in BENCHMARKS.items():
            print(f"  {name:<12} {what}")
        return 0
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"bench: unknown benchmark {', '.join(unknown)}; --list names them", file=sys.stderr)
        return 2
    chosen = argv or list(BENCHMARKS)
    results: list[tuple[str, int, float, list[str]]] = []
    for name in chosen:
        print(f"\n=== bench.{name}: {BENCHMARKS[name]} ===", flush=True)
        began = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", f"bench.{name}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        kept: list[str] = []
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith(("PASS", "FAIL", "bench:")) or "ratio" in line or "hanging/quiet" in line:
                kept.append(line.rstrip())
        status = process.wait()
        results.append((name, status, time.monotonic() - began, kept))
    print("\n=== summary ===")
    for name, status, seconds, kept in results:
        verdict = {0: "PASS", 1: "FAIL"}.get(status, f"NOT RUN (exit {status})")
        print(f"{name:<12} {verdict:<18} {seconds:6.0f} s")
        for line in kept:
            print(f"    {line}")
    statuses = [status for _, status, _, _ in results]
    return 2 if any(s not in (0, 1) for s in statuses) else (1 if any(statuses) else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
