"""A broker's hardware topology (``flux hwloc``): machine, packages, cores, PUs.

Read from Linux sysfs (``/sys/devices/system/cpu/cpuN/topology``: each
logical CPU's ``physical_package_id`` and ``core_id``), limited to the
CPUs the broker may use, as its resource discovery is.  A CPU whose
topology files are missing counts as a core of its own in package 0.
``info_line`` is flux-hwloc(1)'s summary; ``to_xml`` an hwloc 2 style
XML document (one per rank: hwloc 2 allows one Machine per topology).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

__all__ = ["Topology", "local_topology", "summary", "info_line", "to_xml"]

SYSFS_CPU = "/sys/devices/system/cpu"


@dataclass(slots=True)
class Topology:
    hostname: str
    #: package id -> core id -> the PUs (logical CPU numbers) of that core
    packages: dict[int, dict[int, list[int]]] = field(default_factory=dict)
    rank: int | None = None

    @property
    def ncores(self) -> int:
        return sum(len(cores) for cores in self.packages.values())

    @property
    def npus(self) -> int:
        return sum(len(pus) for cores in self.packages.values() for pus in cores.values())

    def to_dict(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "rank": self.rank,
                "packages": [{"id": p, "cores": [{"id": c, "pus": pus}
                                                 for c, pus in sorted(cores.items())]}
                             for p, cores in sorted(self.packages.items())]}

    @classmethod
    def from_dict(cls, data: Any) -> "Topology":
        """The inverse of to_dict(); ValueError if DATA is not one."""
        try:
            packages = {int(p["id"]): {int(c["id"]): [int(pu) for pu in c["pus"]]
                                       for c in p["cores"]}
                        for p in data["packages"]}
            rank = data.get("rank")
            return cls(str(data["hostname"]), packages, None if rank is None else int(rank))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a topology: {exc}") from None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def local_topology(cpus: Iterable[int] | None = None, hostname: str | None = None,
                   rank: int | None = None, sysfs: str = SYSFS_CPU) -> Topology:
    """This host's topology over CPUS (default: those this process may use)."""
    import socket

    if cpus is None:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = range(os.cpu_count() or 1)
    top = Topology(hostname or os.environ.get("FLUX_FAKE_HOSTNAME") or socket.gethostname(),
                   rank=rank)
    for cpu in sorted(set(cpus)):
        base = os.path.join(sysfs, f"cpu{cpu}", "topology")
        package = _read_int(os.path.join(base, "physical_package_id"))
        core = _read_int(os.path.join(base, "core_id"))
        if package is None or core is None:
            # no topology for it: a core of its own (ids past any real core id)
            package, core = 0, -1 - cpu
        top.packages.setdefault(package, {}).setdefault(core, []).append(cpu)
    return top


def summary(tops: Sequence[Topology]) -> tuple[int, int, int]:
    """(machines, cores, PUs) over TOPS."""
    return len(tops), sum(t.ncores for t in tops), sum(t.npus for t in tops)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def info_line(tops: Sequence[Topology]) -> str:
    """``N Machines, C Cores, P PUs`` (flux hwloc info)."""
    machines, cores, pus = summary(tops)
    return f"{_plural(machines, 'Machine')}, {_plural(cores, 'Core')}, {_plural(pus, 'PU')}"


def _cpuset(pus: Iterable[int]) -> str:
    mask = 0
    for pu in pus:
        mask |= 1 << pu
    text = f"{mask:x}"
    width = max(8, -(-len(text) // 8) * 8)
    text = text.rjust(width, "0")
    # hwloc writes the mask as comma-separated 32-bit words
    return ",".join("0x" + text[i:i + 8] for i in range(0, width, 8))


def to_xml(top: Topology) -> str:
    """TOP as an hwloc 2 style XML topology document."""
    all_pus = [pu for cores in top.packages.values() for pus in cores.values() for pu in pus]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<!DOCTYPE topology SYSTEM "hwloc2.dtd">',
             '<topology version="2.0">',
             f'  <object type="Machine" os_index="0" cpuset="{_cpuset(all_pus)}">',
             f'    <info name="HostName" value={quoteattr(top.hostname)}/>']
    if top.rank is not None:
        lines.append(f'    <info name="FluxRank" value="{top.rank}"/>')
    logical = 0
    for package, cores in sorted(top.packages.items()):
        pkg_pus = [pu for pus in cores.values() for pu in pus]
        lines.append(f'    <object type="Package" os_index="{package}" '
                     f'cpuset="{_cpuset(pkg_pus)}">')
        for core, pus in sorted(cores.items(), key=lambda kv: min(kv[1])):
            index = core if core >= 0 else min(pus)
            lines.append(f'      <object type="Core" os_index="{index}" '
                         f'cpuset="{_cpuset(pus)}">')
            for pu in sorted(pus):
                lines.append(f'        <object type="PU" os_index="{pu}" '
                             f'cpuset="{_cpuset([pu])}"/>')
                logical += 1
            lines.append("      </object>")
        lines.append("    </object>")
    lines += ["  </object>", "</topology>"]
    return "\n".join(lines) + "\n"
