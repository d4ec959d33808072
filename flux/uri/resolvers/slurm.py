"""``slurm:JOBID``: the URI of a Flux instance started as a Slurm job.

On a node of the job, ``scontrol listpids JOBID`` lists its processes; the
first of local id 0 that resolves as ``pid:`` gives the URI (remote form).
Elsewhere (``scontrol`` fails), ``srun --overlap --jobid=JOBID -n1 -N1
flux uri slurm:JOBID`` asks the job's first node.
"""
from __future__ import annotations

import os
import subprocess

from flux.uri import JobURI, URIResolverPlugin, URIResolverURI
from flux.uri.resolvers.pid import resolve_pid

__all__ = ["URIResolver", "slurm_job_pids"]


def slurm_job_pids(jobid: str) -> list[int]:
    """PIDs of local id 0 in Slurm job ``jobid`` on this node; OSError if
    scontrol is missing or fails."""
    try:
        proc = subprocess.run(["scontrol", "listpids", jobid], capture_output=True,
                              text=True, check=False)
    except FileNotFoundError as exc:
        raise OSError(exc.errno, "scontrol not found") from None
    if proc.returncode != 0:
        raise OSError(f"scontrol listpids {jobid} failed: {proc.stderr.strip()}")
    pids = []
    for line in proc.stdout.splitlines():
        # PID JOBID STEPID LOCALID GLOBALID; the job's broker has local id 0
        fields = line.split()
        try:
            if len(fields) >= 4 and int(fields[3]) == 0 and int(fields[0]) != os.getpid():
                pids.append(int(fields[0]))
        except ValueError:
            continue  # the header
    return pids


def slurm_resolve_remote(jobid: str) -> str:
    env = dict(os.environ)
    env.pop("FLUX_URI", None)  # else the remote flux uri could answer with ours
    command = ["srun", "--overlap", f"--jobid={jobid}", "-n1", "-N1", "flux", "uri",
               f"slurm:{jobid}"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise ValueError(f"Unable to resolve Flux URI for Slurm job {jobid}: "
                         "scontrol failed and srun was not found") from None
    if proc.returncode != 0:
        raise ValueError(f"Unable to resolve Flux URI for Slurm job {jobid}")
    return proc.stdout.strip()


class URIResolver(URIResolverPlugin):
    """Fetch the URI of a Flux instance launched under Slurm."""

    def describe(self) -> str:
        return "Get URI for a Flux instance launched under Slurm"

    def resolve(self, uri: URIResolverURI) -> str:
        parts = [p for p in uri.path.split("/") if p]
        if not parts:
            raise ValueError(f"no Slurm job id in '{uri.uri}'")
        jobid = parts[0]
        try:
            pids = slurm_job_pids(jobid)
        except OSError:
            return slurm_resolve_remote(jobid)
        for pid in pids:
            try:
                return JobURI(resolve_pid(str(pid))).remote
            except (ValueError, OSError):
                continue
        raise ValueError(f"Slurm job {jobid} doesn't seem to have a FLUX_URI")
