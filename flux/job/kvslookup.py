"""Values from jobs' KVS directories through ``job-info.lookup`` (Flux's flux.job.kvslookup).

``job_info_lookup(h, jobid, keys)`` is the raw RPC (values as text);
``job_kvs_lookup(h, jobid, keys)`` waits for it and returns a dict with
``jobspec`` and ``R`` decoded and, unless ``base=True``, with the job's
``jobspec-update``/``resource-update`` events applied (the job as it is
now); ``original=True`` gives the jobspec as submitted (from J).
``JobKVSLookup`` does the same for many jobs at once, pipelined.
"""
from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from flux.job.JobID import JobID
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["job_info_lookup", "job_kvs_lookup", "JobInfoLookupRPC", "JobKVSLookup"]

_DECODE = 1      # FLUX_JOB_LOOKUP_JSON_DECODE
_CURRENT = 2     # FLUX_JOB_LOOKUP_CURRENT
_JSON_KEYS = ("jobspec", "R", "J")


class JobInfoLookupRPC(RPC):
    """A ``job-info.lookup`` RPC; ``get_decode()`` parses jobspec, R and J."""

    def get_decode(self) -> dict[str, Any]:
        result = dict(self.get())
        for key in _JSON_KEYS:
            value = result.get(key)
            if isinstance(value, (str, bytes)):
                try:
                    result[key] = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass
        return result


def job_info_lookup(flux_handle: "Flux", jobid: Any, keys: Iterable[str] = ("jobspec",),
                    flags: int = 0) -> JobInfoLookupRPC:
    """Send ``job-info.lookup`` for KEYS of JOBID (any job id encoding)."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    return JobInfoLookupRPC(flux_handle, "job-info.lookup",
                            {"id": int(JobID(jobid)), "keys": keys, "flags": flags})


def _jobspec_of_J(J: Any) -> Any:
    if isinstance(J, (str, bytes)):
        J = orjson.loads(J)
    jobspec = J.get("jobspec") if isinstance(J, dict) else None
    if isinstance(jobspec, (str, bytes)):
        jobspec = orjson.loads(jobspec)
    return jobspec


def _request(flux_handle: "Flux", jobid: Any, keys: list[str], decode: bool, original: bool,
             base: bool) -> tuple[JobInfoLookupRPC, list[str]]:
    wanted = list(keys)
    if original and "jobspec" in wanted:
        wanted = ["J" if k == "jobspec" else k for k in wanted]
    flags = 0 if base else _CURRENT
    if decode:
        flags |= _DECODE
    return job_info_lookup(flux_handle, jobid, list(dict.fromkeys(wanted)), flags), wanted


def _result(rpc: JobInfoLookupRPC, keys: list[str], decode: bool,
            original: bool) -> dict[str, Any]:
    data = rpc.get_decode() if decode else dict(rpc.get())
    if original and "jobspec" in keys:
        J = data.pop("J", None)
        jobspec = _jobspec_of_J(J)
        data["jobspec"] = jobspec if decode else orjson.dumps(jobspec).decode()
    return data


def job_kvs_lookup(flux_handle: "Flux", jobid: Any, keys: Iterable[str] = ("jobspec",),
                   decode: bool = True, original: bool = False,
                   base: bool = False) -> dict[str, Any] | None:
    """KEYS of JOBID as a dict (``id`` included), or None for an unknown job or key."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    rpc, _ = _request(flux_handle, jobid, keys, decode, original, base)
    try:
        return _result(rpc, keys, decode, original)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


class JobKVSLookup:
    """The same KEYS of many jobs, requested at once."""

    def __init__(self, flux_handle: "Flux", ids: Iterable[Any] = (),
                 keys: Iterable[str] = ("jobspec",), decode: bool = True,
                 original: bool = False, base: bool = False) -> None:
        self.handle = flux_handle
        self.ids = [JobID(i) for i in ids]
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        self.decode = decode
        self.original = original
        self.base = base
        self.errors: list[str] = []
        self._rpcs: list[tuple[JobID, JobInfoLookupRPC]] | None = None

    def fetch_data(self) -> list[tuple[JobID, JobInfoLookupRPC]]:
        """Send every request (once); returns them."""
        if self._rpcs is None:
            self._rpcs = [(jobid, _request(self.handle, jobid, self.keys, self.decode,
                                           self.original, self.base)[0])
                          for jobid in self.ids]
        return self._rpcs

    def data(self) -> list[dict[str, Any]]:
        """One dict per job that could be read; the others' errors go to ``errors``."""
        out = []
        for jobid, rpc in self.fetch_data():
            try:
                out.append(_result(rpc, self.keys, self.decode, self.original))
            except OSError as exc:
                self.errors.append(f"{jobid}: {exc.strerror or exc}")
        return out
