"""Values from jobs' KVS directories through ``job-info.lookup`` (Flux's flux.job.kvslookup).

``job_info_lookup(h, jobid, keys)`` is the raw RPC (values as text);
``job_kvs_lookup(h, jobid, keys)`` waits for it and returns a dict with
``jobspec`` and ``R`` decoded and, unless ``base=True``, with the job's
``jobspec-update``/``resource-update`` events applied (the job as it is
now); ``original=True`` gives the jobspec as submitted (from J).
``job_info_update_lookup(h, jobid, key)`` asks ``job-info.update-lookup``
for one of ``jobspec`` / ``R`` with its updates applied;
``job_info_update_watch`` streams it again after each update.
``JobKVSLookup`` does the same for many jobs at once, pipelined.
"""
from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.future import WaitAllFuture
from flux.job.event import require_handle
from flux.job.JobID import JobID
from flux.rpc import RPC

if TYPE_CHECKING:
    from flux.core.handle import Flux

__all__ = ["job_info_lookup", "job_kvs_lookup", "JobInfoLookupRPC", "JobKVSLookup",
           "JobKVSLookupFuture", "job_info_update_lookup", "JobInfoUpdateLookupRPC",
           "job_info_update_watch", "JobInfoUpdateWatchRPC"]

_DECODE = 1      # FLUX_JOB_LOOKUP_JSON_DECODE
_CURRENT = 2     # FLUX_JOB_LOOKUP_CURRENT
# J stays text, as Flux gives it: a signed J is no JSON, and a script may
# submit it again as it is (pre_signed=True)
_JSON_KEYS = ("jobspec", "R")


class JobInfoLookupRPC(RPC):
    """A ``job-info.lookup`` RPC; ``get_decode()`` parses jobspec and R (J stays text)."""

    #: the job id as the caller gave it (for error messages)
    jobid: Any = None

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
    require_handle(flux_handle)
    keys = [keys] if isinstance(keys, str) else list(keys)
    rpc = JobInfoLookupRPC(flux_handle, "job-info.lookup",
                           {"id": int(JobID(jobid)), "keys": keys, "flags": flags})
    rpc.jobid = jobid if isinstance(jobid, JobID) else JobID(jobid)
    return rpc


class JobInfoUpdateLookupRPC(RPC):
    """A ``job-info.update-lookup`` RPC: ``get()`` is ``{key: object}``,
    ``get_decode()`` the object alone."""

    key: str = "R"

    def get_decode(self) -> Any:
        return self.get()[self.key]


def job_info_update_lookup(flux_handle: "Flux", jobid: Any,
                           key: str = "R") -> JobInfoUpdateLookupRPC:
    """Send ``job-info.update-lookup``: JOBID's ``jobspec`` or ``R`` as it is now,
    its ``jobspec-update`` / ``resource-update`` events applied (EINVAL for any
    other KEY)."""
    require_handle(flux_handle)
    rpc = JobInfoUpdateLookupRPC(flux_handle, "job-info.update-lookup",
                                 {"id": int(JobID(jobid)), "key": key, "flags": 0})
    rpc.key = key
    return rpc


class JobInfoUpdateWatchRPC(JobInfoUpdateLookupRPC):
    """A streaming ``job-info.update-watch`` RPC: the object now, then after each update.

    ``get_decode()`` / ``get()`` read the current response and ``reset()``
    moves on; iterating yields each object until the job ends.  ``cancel()``
    ends the stream early (the next ``get()`` then raises ENODATA).
    """

    def __iter__(self) -> Iterator[Any]:
        for payload in super().__iter__():
            yield payload[self.key]

    def cancel(self) -> None:
        handle = self.get_flux()
        assert handle is not None
        handle.rpc("job-info.update-watch-cancel", {"matchtag": self.matchtag},
                   flags=FLUX_RPC_NORESPONSE)


def job_info_update_watch(flux_handle: "Flux", jobid: Any,
                          key: str = "R") -> JobInfoUpdateWatchRPC:
    """Send ``job-info.update-watch``: JOBID's ``jobspec`` or ``R`` with its updates
    applied, again after each new update, until the job ends (ENODATA)."""
    require_handle(flux_handle)
    rpc = JobInfoUpdateWatchRPC(flux_handle, "job-info.update-watch",
                                {"id": int(JobID(jobid)), "key": key, "flags": 0},
                                flags=FLUX_RPC_STREAMING)
    rpc.key = key
    return rpc


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
        # J was fetched for the jobspec; it stays in the result if asked for too
        J = data.get("J") if "J" in keys else data.pop("J", None)
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


class JobKVSLookupFuture(WaitAllFuture):
    """The lookups of many jobs as one future: ``get()`` / ``get_decode()`` give a list
    of the jobs' dicts, and the failures go to ``errors`` (``JobID X unknown``,
    ``rpc: TEXT``)."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []
        self._decode_args: dict[int, tuple[list[str], bool, bool]] = {}

    def _collect(self, decode: bool) -> list[dict[str, Any]]:
        self.wait_for()
        out = []
        for child in self.children.values():
            keys, original, _base = self._decode_args.get(id(child), ([], False, False))
            try:
                out.append(_result(child, keys, decode, original))  # type: ignore[arg-type]
            except OSError as exc:
                jobid = getattr(child, "jobid", None)
                if exc.errno == errno.ENOENT:
                    self.errors.append(f"JobID {getattr(jobid, 'orig', jobid)} unknown")
                else:
                    self.errors.append(f"rpc: {exc.strerror or exc}")
        return out

    def get(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Every job that could be read (values as text); failures go to ``errors``."""
        return self._collect(False)

    def get_decode(self) -> list[dict[str, Any]]:
        """As ``get()``, with ``jobspec`` and ``R`` decoded."""
        return self._collect(True)


class JobKVSLookup:
    """The same KEYS of many jobs, requested at once.

    ``fetch_data()`` sends the lookups and returns a JobKVSLookupFuture;
    ``data()`` waits for it and returns the list of the jobs' dicts (the
    failures are in ``errors``).  ``decode``, ``original`` and ``base`` are
    as for ``job_kvs_lookup``.
    """

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

    def fetch_data(self) -> JobKVSLookupFuture:
        """Send one lookup per job; the future is ready once all have answered."""
        future = JobKVSLookupFuture()
        for jobid in self.ids:
            rpc, _ = _request(self.handle, jobid, self.keys, self.decode, self.original,
                              self.base)
            rpc.jobid = jobid
            future._decode_args[id(rpc)] = (self.keys, self.original, self.base)
            future.push(rpc)
        return future

    def data(self) -> list[dict[str, Any]]:
        """One dict per job that could be read; the others' errors go to ``errors``."""
        future = self.fetch_data()
        out = future.get_decode() if self.decode else future.get()
        self.errors = future.errors
        return out
