"""CPU time of a whole server instance (a Dovecot master and every process it forks, including
short-lived ones that have exited), for the benchmark: the instance's process group is moved into
a cgroup of its own right after it started; children inherit the cgroup when they are forked, and
the cgroup's counter keeps the CPU time of processes that have exited.

cgroup v1 `cpuacct` (cpuacct.usage, ns) when that hierarchy is mounted and writable, else cgroup v2
(cpu.stat usage_usec, which the v2 core keeps even without the cpu controller). Without either
(no root, read-only /sys/fs/cgroup), `usage()` falls back to the utime+stime of the group's LIVE
processes and `exact` is False: exited processes are then not counted.
"""
from __future__ import annotations

import os
from pathlib import Path

from harness.procinfo import cpu_seconds

V1 = Path("/sys/fs/cgroup/cpuacct")
V2_CANDIDATES = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))


def group_pids(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) == pgid:
                out.append(int(entry))
        except OSError:
            continue
    return out


class CgroupCpu:
    def __init__(self, name: str):
        self.name = f"popgate-bench-{os.getpid()}-{name}"
        self.path: Path | None = None
        self.kind = "none"
        self.pgid: int | None = None
        candidates = []
        if (V1 / "cpuacct.usage").exists():
            candidates.append(("cgroup v1 cpuacct", V1))
        candidates += [("cgroup v2", p) for p in V2_CANDIDATES if (p / "cgroup.controllers").exists()]
        for kind, base in candidates:
            try:
                (base / self.name).mkdir()
            except OSError:
                continue
            self.path, self.kind = base / self.name, kind
            break

    @property
    def exact(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        return (f"{self.kind} ({self.path})" if self.path is not None
                else "utime+stime of the live processes only (no writable cgroup: exited ones are missed)")

    def adopt(self, pgid: int) -> None:
        """Moves every process of the group into the cgroup; the master first, then a second pass
        for anything it forked meanwhile."""
        self.pgid = pgid
        if self.path is None:
            return
        for _ in range(2):
            for pid in [pgid] + [p for p in group_pids(pgid) if p != pgid]:
                try:
                    (self.path / "cgroup.procs").write_text(f"{pid}\n")
                except OSError:
                    pass   # exited meanwhile

    def usage(self) -> float:
        """CPU seconds (user + system) so far."""
        if self.path is not None:
            if self.kind.startswith("cgroup v1"):
                return int((self.path / "cpuacct.usage").read_text()) / 1e9
            for line in (self.path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
            raise RuntimeError(f"no usage_usec in {self.path}/cpu.stat")
        total = 0.0
        for pid in group_pids(self.pgid) if self.pgid is not None else []:
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
        return total

    def remove(self) -> None:
        """After the instance stopped: moves leftovers (if any) to the parent, removes the cgroup."""
        if self.path is None:
            return
        path, self.path = self.path, None
        try:
            for pid in (path / "cgroup.procs").read_text().split():
                try:
                    (path.parent / "cgroup.procs").write_text(f"{pid}\n")
                except OSError:
                    pass
            path.rmdir()
        except OSError:
            pass
