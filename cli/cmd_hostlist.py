"""flux hostlist: combine and transform RFC 29 hostlists (flux-hostlist(1)).

``flux hostlist [OPTIONS] [SOURCES...]``: each SOURCE is ``instance`` (the
instance's hosts, rank order), ``local`` (the job ``FLUX_JOB_ID`` names,
unless that job is this instance, then ``instance``), ``avail``/``available``
(``instance`` less the nodes down, drained or excluded), ``stdin``/``-``
(hostlists on stdin), a job id (its nodes), or a literal hostlist.  The
default is stdin (``-l``: local).  The lists are concatenated, or with
``-u``/``-i``/``-m``/``-X`` combined as sets; then ``-x``, ``-S``, ``-n``,
``-L`` apply, in that order; the result is printed compressed, expanded
(``-e``, ``-d``), as a count (``-c``), as the indices of ``-F HOSTS``, or
not at all (``-q``: the exit code says whether it is empty).

The pure part (``combine``, ``transform``, ``select``) works on lists of
host names; ``command`` fetches the sources.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from cli.common import die, handle_errors, unescape
from flux.hostlist import Hostlist
from flux.idset import IDset

__all__ = ["combine", "command", "limit", "select_nth", "transform"]


# -- pure ---------------------------------------------------------------------------------

def combine(lists: Sequence[list[str]], mode: str) -> list[str]:
    """LISTS concatenated (``concat``), or as sets: ``union``, ``intersect``,
    ``minus`` (the first less the others), ``xor``; set results are sorted."""
    if mode == "concat":
        return [h for hosts in lists for h in hosts]
    if not lists:
        return []
    sets = [set(hosts) for hosts in lists]
    result = set(sets[0])
    for other in sets[1:]:
        if mode == "union":
            result |= other
        elif mode == "intersect":
            result &= other
        elif mode == "minus":
            result -= other
        elif mode == "xor":
            result ^= other
        else:
            raise ValueError(f"unknown combination {mode!r}")
    return Hostlist(list(result)).sort().expand() if result else []


def select_nth(hosts: list[str], spec: str) -> list[str]:
    """The hosts at the indices of the idset SPEC (``-IDS``: counted from the end,
    1 the last); ValueError if an index is out of range."""
    from_end = spec.startswith("-")
    ids = IDset(spec[1:] if from_end else spec).expand()
    out = []
    for i in ids:
        pos = len(hosts) - i if from_end else i
        if (from_end and i == 0) or not 0 <= pos < len(hosts):
            raise ValueError(f"invalid index {'-' if from_end else ''}{i} "
                             f"(the hostlist has {len(hosts)} hosts)")
        out.append(hosts[pos])
    return out


def limit(hosts: list[str], n: int) -> list[str]:
    """At most N hosts: the first N, or with N < 0 the last -N."""
    return hosts[:n] if n >= 0 else hosts[n:]


def transform(hosts: list[str], *, exclude: str | None = None, sort: bool = False,
              nth: str | None = None, count: int | None = None) -> list[str]:
    """-x (a hostlist, or an idset of indices), -S, -n, -L, in that order."""
    if exclude:
        try:
            drop = set(IDset(exclude).expand())
            hosts = [h for i, h in enumerate(hosts) if i not in drop]
        except ValueError:
            gone = set(Hostlist(exclude).expand())
            hosts = [h for h in hosts if h not in gone]
    if sort and hosts:
        hosts = Hostlist(hosts).sort().expand()
    if nth is not None:
        hosts = select_nth(hosts, nth)
    if count is not None:
        hosts = limit(hosts, count)
    return hosts


# -- sources --------------------------------------------------------------------------------

class _Sources:
    """Fetches each kind of source once, on one handle opened when first needed."""

    def __init__(self, fallback: bool, stdin: Callable[[], str]) -> None:
        self.fallback = fallback
        self._stdin = stdin
        self._h: Any = None

    @property
    def h(self) -> Any:
        if self._h is None:
            import flux

            self._h = flux.Flux()
        return self._h

    def instance(self) -> list[str]:
        from flux.resource.status import resource_status

        return resource_status(self.h).get().nodelist.expand()

    def avail(self) -> list[str]:
        from flux.resource.status import resource_status

        rs = resource_status(self.h).get()
        ranks = rs.avail - rs.offline
        return [rs.rset.hostname(r) for r in ranks if rs.rset.hostname(r)]

    def local(self) -> list[str]:
        jobid = os.environ.get("FLUX_JOB_ID")
        if jobid:
            from flux.job import JobID

            try:
                ours = self.h.attr_get("jobid")
            except OSError:
                ours = None
            # in a batch script FLUX_JOB_ID is the job this instance *is*
            if ours is None or JobID(ours) != JobID(jobid):
                return self.job(jobid, fallback=False)
        return self.instance()

    def job(self, text: str, fallback: bool | None = None) -> list[str]:
        from flux.job import JobID, get_job

        jobid = JobID(text)
        try:
            info = get_job(self.h, jobid)
        except OSError:
            info = None
        if info is None:
            if self.fallback if fallback is None else fallback:
                return Hostlist(text).expand()
            raise ValueError(f"job {text} not found")
        return Hostlist(info.get("nodelist") or "").expand()

    def get(self, source: str) -> list[str]:
        if source == "instance":
            return self.instance()
        if source in ("avail", "available"):
            return self.avail()
        if source == "local":
            return self.local()
        if source in ("stdin", "-"):
            return Hostlist(self._stdin().split()).expand()
        from flux.job import JobID

        try:
            JobID(source)
        except (ValueError, TypeError, OverflowError):
            try:
                return Hostlist(source).expand()
            except (ValueError, TypeError) as exc:
                raise ValueError(f"invalid hostlist or source {source!r}: {exc}") from None
        return self.job(source)


# -- command --------------------------------------------------------------------------------

@click.command("hostlist", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--expand", is_flag=True, help="Expand the result (DELIMITER-separated)")
@click.option("-d", "--delimiter", default=" ", metavar="S",
              help="Delimiter for --expand (default: space)")
@click.option("-c", "--count", "show_count", is_flag=True, help="Print the number of hosts")
@click.option("-n", "--nth", metavar="IDS",
              help="Only the hosts at indices IDS (-IDS: counted from the end)")
@click.option("-F", "--find", "find_", metavar="HOSTS",
              help="Print the indices of HOSTS in the result")
@click.option("-L", "--limit", "limit_", type=int, metavar="N",
              help="At most N hosts (-N: the last N)")
@click.option("-S", "--sort", is_flag=True, help="Sort the result")
@click.option("-u", "--union", "--unique", "union", is_flag=True,
              help="Only unique hosts (sorted): the union of the lists")
@click.option("-x", "--exclude", metavar="HOSTS|IDS",
              help="Leave out HOSTS, or the hosts at indices IDS")
@click.option("-i", "--intersect", is_flag=True, help="The intersection of the lists")
@click.option("-m", "--minus", is_flag=True, help="The first list less all the others")
@click.option("-X", "--xor", is_flag=True, help="The symmetric difference of the lists")
@click.option("-f", "--fallback", is_flag=True,
              help="Take a job id that is not found for a host name")
@click.option("-l", "--local", is_flag=True, help="Default source: local (not stdin)")
@click.option("-q", "--quiet", is_flag=True,
              help="Print nothing; exit 1 if the result is empty")
@click.argument("sources", nargs=-1, metavar="[SOURCES]...")
@handle_errors("hostlist")
def command(expand: bool, delimiter: str, show_count: bool, nth: str | None,
            find_: str | None, limit_: int | None, sort: bool, union: bool,
            exclude: str | None, intersect: bool, minus: bool, xor: bool, fallback: bool,
            local: bool, quiet: bool, sources: tuple[str, ...]) -> None:
    """Combine and transform RFC 29 hostlists from SOURCES (default: stdin)."""
    modes = [m for m, on in (("union", union), ("intersect", intersect), ("minus", minus),
                             ("xor", xor)) if on]
    if len(modes) > 1:
        raise click.UsageError("only one of --union, --intersect, --minus, --xor may be used")
    fetch = _Sources(fallback, lambda: sys.stdin.read())
    try:
        lists = [fetch.get(s) for s in (sources or (("local",) if local else ("stdin",)))]
        hosts = combine(lists, modes[0] if modes else "concat")
        hosts = transform(hosts, exclude=exclude, sort=sort, nth=nth, count=limit_)
        if find_ is not None:
            where = []
            for host in Hostlist(find_).expand():
                if host not in hosts:
                    raise ValueError(f"{host} not found in the hostlist")
                where.append(str(hosts.index(host)))
    except ValueError as exc:
        die("hostlist", f"ERROR: {exc}")
    if quiet:
        sys.exit(0 if hosts else 1)
    if find_ is not None:
        click.echo(" ".join(where))
    elif show_count:
        click.echo(len(hosts))
    elif expand:
        click.echo(unescape(delimiter).join(hosts))
    else:
        click.echo(Hostlist(hosts).encode() if hosts else "")
