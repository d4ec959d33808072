"""``flux-shell``: the job shell as a command, for running a job without an instance.

flux-shell(1): ``flux-shell [-v] [--initrc=FILE] -s -j JOBSPEC -R R [JOBID]``
runs the job's tasks here, as the shell of every rank of R in turn would
not: standalone it plays the shell of R's first rank, with barriers that
pass at once, output on our stdout/stderr and exceptions printed.  The
exit code is the largest task exit code.  Shells of jobs in an instance
are started by the job-exec service, not with this command.
"""
from __future__ import annotations

import sys

import click
import orjson
import yaml


def _load(path: str, what: str) -> object:
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError as exc:
        raise click.UsageError(f"{what} {path}: {exc.strerror}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise click.UsageError(f"{what} {path}: not JSON or YAML: {exc}") from None


@click.command("flux-shell", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log actions to stderr")
@click.option("--initrc", metavar="FILE", help="Load shell initrc from FILE")
@click.option("-R", "--resources", "rfile", metavar="FILE", help="Load R from FILE")
@click.option("-j", "--jobspec", "jfile", metavar="FILE", help="Load jobspec from FILE")
@click.option("-s", "--standalone", is_flag=True, help="Run without a Flux instance")
@click.argument("jobid", required=False)
def main(verbose: int, initrc: str | None, rfile: str | None, jfile: str | None,
         standalone: bool, jobid: str | None) -> None:
    """Run a job's tasks (standalone, for testing)."""
    from flux.core.reactor import Reactor
    from flux.job.JobID import JobID
    from shell.host import StandaloneHost
    from shell.info import job_info, r_ranks
    from shell.shell import Shell

    if not standalone:
        raise click.UsageError("shells of jobs in an instance are started by job-exec; "
                               "use --standalone with --jobspec and --resources")
    if not jfile or not rfile:
        raise click.UsageError("--standalone needs --jobspec and --resources")
    jobspec, R = _load(jfile, "jobspec"), _load(rfile, "R")
    try:
        id_ = int(JobID(jobid)) if jobid else 0
    except ValueError:
        raise click.UsageError(f"invalid jobid {jobid!r}") from None
    try:
        first = r_ranks(R)[0][0]  # type: ignore[arg-type]
        info = job_info(id_, jobspec, R, first)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError) as exc:
        click.echo(f"flux-shell: {exc}", err=True)
        sys.exit(1)
    if verbose:
        info.options["verbose"] = verbose
    args = {"initrc": initrc} if initrc else {}
    host = StandaloneHost(Reactor())
    sys.exit(host.run(Shell(info, host, args)))


if __name__ == "__main__":  # pragma: no cover
    main()
