"""flux perilog-run: a job prolog or epilog across the job's ranks (Administrator's
Guide, "Adding Job Prolog/Epilog Scripts").

Run as ``[job-manager.prolog]``/``[job-manager.epilog]`` ``command``, with
``FLUX_JOB_ID`` set: first every executable in the exec directory (default
``/etc/flux/system/prolog.d`` or ``epilog.d``), here on rank 0 in name
order, then ``-e CMD,ARGS`` on every rank of the job at once (rexec, as
``flux exec`` runs it), each line of output labelled with its rank.  The
exit code is the largest of all of them; a failing script stops the rest.

Our ``[job-manager.prolog]`` runs its command on every rank of the job by
default (``per-rank = true``), flux-core's on rank 0 only: so that the
Guide's configuration does the work once, only the invocation on the
job's first rank runs anything; the others exit 0 at once.
"""
from __future__ import annotations

import os
import subprocess
import sys

import click

from cli.common import die, handle_errors

__all__ = ["command", "directory_scripts"]


def directory_scripts(directory: str) -> list[str]:
    """The executable regular files of DIRECTORY in name order ([] if it is missing)."""
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    paths = [os.path.join(directory, n) for n in names]
    return [p for p in paths if os.path.isfile(p) and os.access(p, os.X_OK)]


def _job_ranks(h: object, jobid: str) -> list[int]:
    """The job's broker ranks: ``FLUX_JOB_RANKS`` (the job manager sets it), else its R."""
    from flux.idset import IDset

    env = os.environ.get("FLUX_JOB_RANKS")
    if env:
        return list(IDset(env).expand())
    from flux.job import JobID
    from flux.job.kvslookup import job_kvs_lookup

    info = job_kvs_lookup(h, JobID(jobid), keys=["R"], decode=True)
    ranks: set[int] = set()
    for item in (info or {}).get("R", {}).get("execution", {}).get("R_lite", []):
        ranks.update(IDset(item["rank"]).expand())
    return sorted(ranks)


@click.command("perilog-run", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--exec-per-rank", "per_rank", metavar="CMD,ARGS",
              help="Run CMD ARGS (comma-separated) on every rank of the job")
@click.option("-d", "--exec-directory", "directory", metavar="DIR",
              help="Run the executables in DIR first (default /etc/flux/system/NAME.d)")
@click.option("-v", "--verbose", is_flag=True, help="Say what runs where")
@click.argument("name", type=click.Choice(["prolog", "epilog"]))
@handle_errors("perilog-run")
def command(per_rank: str | None, directory: str | None, verbose: bool, name: str) -> None:
    """Run the job prolog or epilog NAME: scripts of a directory here, then CMD on
    every rank of the job FLUX_JOB_ID names."""
    jobid = os.environ.get("FLUX_JOB_ID")
    if not jobid:
        die("perilog-run", "FLUX_JOB_ID is not set: run me as a job-manager prolog or epilog")
    import flux

    h = flux.Flux()
    ranks = _job_ranks(h, jobid)
    if not ranks:
        die("perilog-run", f"job {jobid}: no ranks assigned")
    if h.get_rank() != ranks[0]:
        if verbose:
            click.echo(f"flux-perilog-run: {name}: rank {h.get_rank()}: the job's first "
                       f"rank ({ranks[0]}) runs it", err=True)
        return
    directory = directory or f"/etc/flux/system/{name}.d"
    for script in directory_scripts(directory):
        if verbose:
            click.echo(f"flux-perilog-run: {name}: running {script}", err=True)
        code = subprocess.run([script], check=False).returncode
        if code != 0:
            die("perilog-run", f"{name}: {script} exited with {code}",
                code if 0 < code < 256 else 1)
    if not per_rank:
        return
    argv = [a for a in per_rank.split(",")]
    if not argv[0]:
        raise click.UsageError("--exec-per-rank: the command is empty")
    from cli.cmd_exec import ExecRun
    from flux.idset import IDset

    if verbose:
        click.echo(f"flux-perilog-run: {name}: {' '.join(argv)} on ranks "
                   f"{IDset(ranks).encode(2 | 4)}", err=True)
    env = dict(os.environ)
    cmd = {"cmdline": argv, "cwd": "/", "env": env, "opts": {}, "channels": []}
    code = ExecRun(h, ranks, cmd, label_io=True, noinput=True, verbose=False).run()
    sys.stdout.flush()
    sys.exit(code)
