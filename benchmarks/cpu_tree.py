"""CPU-seconds of a command and every process it starts, JVMs included, with its wall time.

`/usr/bin/time` and `os.times()` count only children that were waited for; a Spark test's JVM is not, so its
CPU is invisible to them. This polls /proc every 0.3 s and keeps each descendant's last reading (a process that
lives less than a poll is missed). CPU-seconds move less with the machine's load than wall time, so A/B figures
of the test suite's Spark tests are read in them (docs/benchmarks.md, "The test suite").

    python benchmarks/cpu_tree.py -- python -m pytest -q tests/test_spark.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU-seconds so far, command name) of every readable process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK,
                             stat[stat.index("(") + 1:stat.rindex(")")])
    return found


def descendants(root: int, table: dict[int, tuple[int, float, str]]) -> set[int]:
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, (parent, _, _) in table.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    start = time.time()
    proc = subprocess.Popen(command)
    last: dict[int, tuple[float, str]] = {}
    while proc.poll() is None:
        table = processes()
        for pid in descendants(proc.pid, table):
            if pid in table:
                last[pid] = (table[pid][1], table[pid][2])
        time.sleep(0.3)
    by_name: dict[str, float] = {}
    for cpu, name in last.values():
        by_name[name] = by_name.get(name, 0.0) + cpu
    parts = ", ".join(f"{name} {cpu:.1f}" for name, cpu in sorted(by_name.items(), key=lambda x: -x[1]) if cpu >= 0.1)
    print(f"wall {time.time() - start:.1f} s, CPU {sum(by_name.values()):.1f} s ({parts})", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
