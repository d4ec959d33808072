"""flux pstree: the jobs of this instance and of every instance below it, as a tree.

The root is the enclosing instance (``.``, or its job name when it is itself
a job); below it its jobs, and below each running job that is a Flux
instance, that instance's jobs, recursively (``-L N`` levels).  By default
only running jobs are shown (``-a``: every state, labels get ``:PD``,
``:R``, ``:CD``... suffixes; ``-f``: chosen states/results) and identical
childless siblings collapse to ``N*[label]`` (``-X`` keeps them apart).
``-p`` puts job ids on instance labels; ``-x`` / ``-d NAME`` /
``--detail-format`` print job details before the tree (then the root is
skipped unless ``--skip-root=no``).  Labels are ``flux jobs`` formats
(``-o``, ``--parent-label``).  Instances are read in parallel; one that
cannot be reached (not up yet, gone, another user's) shows no children.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import click

#: ``-d NAME`` formats of the details printed before the tree
DETAILS_FORMAT = {
    "default": ("{id.f58:>12} {username:<8.8} {status_abbrev:>2.2} {ntasks:>6h}"
                " {nnodes:>6h} {runtime!F:>8h}"),
    "resources": ("{id.f58:>12} {instance.resources.all.nnodes:>5} "
                  "{instance.resources.allocated.nnodes:>5} {instance.resources.all.ncores:>5} "
                  "{instance.resources.allocated.ncores:>5} {instance.resources.all.ngpus:>5} "
                  "{instance.resources.allocated.ngpus:>5}"),
    "progress": ("{id.f58:>12} {ntasks:>6h} {instance.stats.total:>6} "
                 "{instance.progress!P:>5} {instance.utilization!P:>5} "
                 "{instance.gpu_utilization!P:>5} {runtime!H:>10}"),
    "stats": "{id.f58:>12} {instance.stats:^25} {runtime!H:>10}",
}
#: labels of jobs (LABEL) and of running instances (PARENT), without and with -a
LABEL_FORMAT = {"default": "{name}", "all": "{name}:{status_abbrev}"}
PARENT_FORMAT = {"default": "{name}", "all": "{name}"}

_PENDING = 2 | 4 | 8  # DEPEND | PRIORITY | SCHED
_RUN = 16


def _job_class() -> type:
    from flux.job.info import JobInfo

    class PstreeJob(JobInfo):
        """A job as pstree shows it: a pending job's status is ``PD`` (as the
        hierarchies guide prints ``sleep:PD``)."""

        @property
        def status_abbrev(self) -> str:
            state = self.state_id
            if isinstance(state, int) and state & _PENDING:
                return "PD"
            return self.__getattr__("status_abbrev")

    return PstreeJob


def _root_jobid() -> Any:
    from flux.job.JobID import JobID

    class RootJobID(JobID):
        """The enclosing instance when it is not a job: every encoding is ``.``."""

        def __new__(cls) -> "RootJobID":
            self = int.__new__(cls, 0)
            self.orig_str = "."
            return self

        def encode(self, encoding: str = "dec") -> str:
            return "."

        def __str__(self) -> str:
            return "."

        def __format__(self, spec: str) -> str:
            return format(".", spec)

    for name in ("dec", "hex", "dothex", "kvs", "f58", "f58plain", "words", "emoji"):
        setattr(RootJobID, name, property(lambda self: "."))
    return RootJobID()


class TreeFormatter:
    """The label formats (jobs, running instances) and the optional details prefix."""

    def __init__(self, label: str | None, parent_label: str | None, all_states: bool,
                 parent_ids: bool, details: str | None, detail_format: str | None,
                 extended: bool) -> None:
        from flux.job.info import JobInfoFormat

        if label and not parent_label:
            parent_label = label
        kind = "all" if all_states else "default"
        label = label or LABEL_FORMAT[kind]
        parent_label = parent_label or PARENT_FORMAT[kind]
        if parent_ids:
            parent_label = "{id.f58} " + parent_label
        self.label = JobInfoFormat(label)
        self.parent = JobInfoFormat(parent_label)
        self.prefix = None
        if extended or details or detail_format:
            if not detail_format:
                details = details or "default"
                if details not in DETAILS_FORMAT:
                    raise ValueError(f"Unknown --details format '{details}'")
                detail_format = DETAILS_FORMAT[details]
            self.prefix = JobInfoFormat(detail_format)

    def format(self, job: Any, parent: bool) -> str:
        return (self.parent if parent else self.label).format(job)

    def format_prefix(self, job: Any) -> str:
        return self.prefix.format(job) if self.prefix is not None else ""


class TreeLoader:
    """Builds the tree: one instance's jobs per level, child instances in parallel."""

    def __init__(self, formatter: TreeFormatter, states: int, results: int, count: int,
                 max_level: int, combine: bool, threads: int | None = None) -> None:
        self.formatter = formatter
        self.states = states
        self.results = results
        self.count = count
        self.max_level = max_level
        self.combine = combine
        self.threads = threads
        self.uid = os.getuid()
        self.job_class = _job_class()

    def _list(self, uri: str | None, states: int, results: int, jobids: list[Any]
              ) -> list[dict[str, Any]]:
        from flux.core.handle import Flux

        h = Flux(uri) if uri else Flux()
        try:
            if jobids:
                futures = [h.rpc("job-list.list-id", {"id": int(j), "attrs": ["all"]})
                           for j in jobids]
                out = []
                for jobid, future in zip(jobids, futures):
                    try:
                        out.append(future.get()["job"])
                    except FileNotFoundError:
                        # as flux-core's job listing says it (flux jobs does too)
                        sys.stderr.write(f"JobID {jobid.orig} unknown\n")
                return out
            body = {"max_entries": self.count, "attrs": ["all"], "states": states,
                    "results": results, "userid": self.uid}
            return h.rpc("job-list.list", body).get()["jobs"]
        finally:
            h.close()

    def entry(self, job: Any, level: int) -> Any:
        """The subtree of one job: a leaf, or a running instance with its own jobs."""
        from flux.util.tree import Tree

        parent = bool(job.uri) and job.state_id == _RUN
        label = self.formatter.format(job, parent)
        prefix = self.formatter.format_prefix(job)
        if not parent:
            return Tree(label, prefix)
        from flux.uri import JobURI

        return self.load(label, prefix, JobURI(str(job.uri)).local, level + 1)

    def load(self, label: str, prefix: str | None, uri: str | None, level: int = 0,
             skip_root: bool = True, jobids: list[Any] | None = None) -> Any:
        """The tree of the instance at URI (None: the enclosing one) under LABEL."""
        from flux.util.tree import Tree

        tree = Tree(label, prefix=prefix or "", combine_children=self.combine)
        if level > self.max_level:
            return tree
        states, results = self.states, self.results
        if level == 0 and skip_root:
            # the root's own jobs are tree roots: only running ones, as Flux shows them
            states, results = 16 | 32, 0
        try:
            entries = self._list(uri, states, results, jobids or [])
        except (OSError, ValueError):
            return tree
        jobs = [self.job_class(entry) for entry in entries]
        instances = sum(1 for job in jobs if job.uri and job.state_id == _RUN)
        if instances > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.threads) as pool:
                subtrees = list(pool.map(lambda job: self.entry(job, level), jobs))
        else:
            subtrees = [self.entry(job, level) for job in jobs]
        for subtree in subtrees:
            tree.append_tree(subtree)
        return tree


def _attr(h: Any, name: str, default: Any) -> Any:
    try:
        return h.attr_get(name)
    except OSError:
        return default


def root_jobinfo(job_class: type) -> Any:
    """The enclosing instance as a job: its entry in its parent's job list when it is
    one, else a stand-in named ``.`` (id ``.``) with the instance's size, hosts and URI."""
    from flux.core.handle import Flux

    h = Flux()
    try:
        size = int(h.attr_get("size"))
        info = None
        try:
            jobid = h.attr_get("jobid")
            parent_uri = h.attr_get("parent-uri")
        except OSError:
            jobid = parent_uri = None
        if jobid and parent_uri:
            try:
                from flux.job.JobID import JobID

                parent = Flux(parent_uri)
                try:
                    info = parent.rpc("job-list.list-id",
                                      {"id": int(JobID(jobid)), "attrs": ["all"]}).get()["job"]
                finally:
                    parent.close()
            except (OSError, ValueError):
                info = None
        if info is None:
            try:
                owner = int(_attr(h, "security.owner", os.getuid()))
            except ValueError:
                owner = os.getuid()
            info = {"id": 0, "userid": owner, "state": _RUN, "name": ".", "ntasks": size,
                    "nnodes": size, "nodelist": _attr(h, "hostlist", ""),
                    "annotations": {"user": {"uri": _attr(h, "local-uri", h.url)}}}
            try:
                info["t_run"] = float(_attr(h, "broker.starttime", ""))
            except ValueError:
                pass
    finally:
        h.close()
    # ranks as this instance numbers them, not as its parent did
    info["ranks"] = f"0-{size - 1}"
    job = job_class(info)
    if int(job.id) == 0:
        job.id = _root_jobid()
    return job


@click.command("pstree", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--all", "all_states", is_flag=True,
              help="Include all jobs for current user in all states")
@click.option("-c", "--count", type=click.IntRange(min=0), default=1000, metavar="N",
              help="Limit to N jobs per instance (default 1000)")
@click.option("-f", "--filter", "filters", metavar="STATE|RESULT", default=None,
              help="List jobs with specific job state or result (default running)")
@click.option("-x", "--extended", is_flag=True, help="Print extended details before tree output")
@click.option("-l", "--long", "long_", is_flag=True,
              help="Do not truncate long lines to terminal width")
@click.option("-L", "--level", type=click.IntRange(min=0), default=999, metavar="N",
              help="Only descend N levels")
@click.option("-p", "--parent-ids", is_flag=True, help="Include jobids in parent labels")
@click.option("-n", "--no-header", is_flag=True, help="Suppress header with -x, --extended")
@click.option("-X", "--no-combine", is_flag=True,
              help="Disable combination of identical children")
@click.option("-o", "--label", metavar="FORMAT", default=None,
              help="Change label format (default='{name}')")
@click.option("--parent-label", metavar="FORMAT", default=None,
              help="Change label format for parent only")
@click.option("--detail-format", metavar="FORMAT", default=None,
              help="Specify output format for extended details (implies -x, --extended)")
@click.option("-d", "--details", metavar="NAME", default=None,
              help="Select a named extended details format (" + ",".join(DETAILS_FORMAT) + ")")
@click.option("-C", "--compact", is_flag=True, help="Use compact tree connectors")
@click.option("--ascii", is_flag=True, help="Use ASCII character tree connectors")
@click.option("--skip-root", type=click.Choice(["yes", "no"]), default=None,
              help="Suppress or include the enclosing instance in output. Default is 'no' "
                   "unless the -x, --extended or -d, --details options are used.")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker threads for reading child instances (default: Python's)")
@click.argument("jobids", nargs=-1, metavar="[JOBID...]")
def command(all_states: bool, count: int, filters: str | None, extended: bool, long_: bool,
            level: int, parent_ids: bool, no_header: bool, no_combine: bool,
            label: str | None, parent_label: str | None, detail_format: str | None,
            details: str | None, compact: bool, ascii: bool, skip_root: str | None,
            threads: int | None, jobids: tuple[str, ...]) -> None:
    """Show the jobs of this instance and of the instances below it as a tree."""
    from cli.cmd_jobs import parse_filters
    from cli.common import die, error_text
    from cli.job_common import parse_jobid

    if ascii and compact:
        raise click.UsageError("Choose only one of --ascii, --compact")
    ids = []
    for text in jobids:
        try:
            ids.append(parse_jobid(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'JOBID'") from None
    if ids and (all_states or filters is not None or count != 1000):
        click.echo("flux-pstree: warning: filtering options ignored with jobid list", err=True)
    try:
        states, results = parse_filters(["pending,running,inactive" if all_states
                                         else (filters or "running")])
        formatter = TreeFormatter(label, parent_label, all_states, parent_ids, details,
                                  detail_format, extended)
    except ValueError as exc:
        die("pstree", str(exc))
    # the root is skipped by default when details are shown or jobs are named
    skip = formatter.prefix is not None or bool(ids)
    if skip_root is not None:
        skip = skip_root == "yes"
    loader = TreeLoader(formatter, states, results, count, level, not no_combine, threads)
    try:
        if skip:
            root_label, root_prefix = ".", None
        else:
            root = root_jobinfo(loader.job_class)
            root_label = formatter.format(root, True)
            root_prefix = formatter.format_prefix(root)
        tree = loader.load(root_label, root_prefix, None, skip_root=skip, jobids=ids)
        style = "compact" if compact else "ascii" if ascii else "box"
        if formatter.prefix is not None and not no_header:
            click.echo(formatter.prefix.header())
        tree.render(skip_root=skip, style=style, truncate=not long_)
    except (OSError, ValueError, KeyError) as exc:
        die("pstree", error_text(exc).strip("'\""))
    sys.stdout.flush()
