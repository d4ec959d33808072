"""``lsf:JOBID``: the URI of a Flux instance started as an IBM Spectrum LSF job.

From a login node: the job's first compute node comes from IBM CSM
(``$CSM_ALLOCATION_QUERY -j JOBID``, default
``/opt/ibm/csm/bin/csm_allocation_query``, YAML with ``compute_nodes``), then
``$FLUX_SSH HOST $FLUX_SSH_RCMD uri --remote lsf:JOBID?is_compute`` runs
there (``ssh`` and the ``flux`` on PATH by default).  With ``?is_compute``
(on the compute node): the broker of this user whose environment has
``LSB_JOBID=JOBID`` gives the URI (remote form).
"""
from __future__ import annotations

import os
import shutil
import subprocess

from flux.uri import JobURI, URIResolverPlugin, URIResolverURI
from flux.uri.resolvers.pid import broker_uri

__all__ = ["URIResolver"]


def lsf_find_compute_node(jobid: str) -> str:
    """The first (sorted) compute node of LSF job ``jobid``."""
    import yaml

    from flux.hostlist import Hostlist

    query = os.environ.get("CSM_ALLOCATION_QUERY", "/opt/ibm/csm/bin/csm_allocation_query")
    try:
        proc = subprocess.run([query, "-j", str(jobid)], capture_output=True, text=True,
                              check=False)
        hosts = yaml.safe_load(proc.stdout)["compute_nodes"]
        if isinstance(hosts, str):
            hosts = [hosts]
        return Hostlist(hosts).sort()[0]
    except Exception as exc:  # noqa: BLE001 - any failure means no node
        raise ValueError(f"Unable to find a compute node attached to job {jobid}") from exc


def lsf_job_broker(jobid: str) -> str:
    """The URI of this user's broker running in LSF job ``jobid`` on this node."""
    uid = os.getuid()
    wanted = f"LSB_JOBID={jobid}".encode()
    for entry in sorted((e for e in os.listdir("/proc") if e.isdigit()), key=int):
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if wanted not in fh.read().split(b"\0"):
                    continue
        except OSError:
            continue
        uri = broker_uri(int(entry))
        if uri:
            return uri
    raise ValueError("Unable to find a flux session attached to your job")


def lsf_get_uri(host: str, jobid: str) -> str:
    ssh = os.environ.get("FLUX_SSH", "ssh")
    flux_cmd = os.environ.get("FLUX_SSH_RCMD") or shutil.which("flux") or "flux"
    proc = subprocess.run([ssh, host, flux_cmd, "uri", "--remote", f"lsf:{jobid}?is_compute"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


class URIResolver(URIResolverPlugin):
    """Fetch the URI of a Flux instance launched under IBM Spectrum LSF."""

    def describe(self) -> str:
        return "Get URI for a Flux instance launched under IBM Spectrum LSF"

    def resolve(self, uri: URIResolverURI) -> str:
        parts = [p for p in uri.path.split("/") if p]
        if not parts:
            raise ValueError(f"no LSF job id in '{uri.uri}'")
        jobid = parts[0]
        if "is_compute" in uri.query_dict:
            return JobURI(lsf_job_broker(jobid)).remote
        host = lsf_find_compute_node(jobid)
        try:
            return lsf_get_uri(host, jobid)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ValueError(f"LSF Job {jobid} doesn't seem to have a FLUX_URI") from exc
