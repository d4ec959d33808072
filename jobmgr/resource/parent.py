"""An instance that is a job of another: its R and its time limit come from the parent.

When a broker starts as the tasks of a job, it has the attributes
``parent-uri`` and ``jobid`` (broker/broker.py).  Rank 0's resource module
then asks the parent instance for the job's R (``job-info.lookup``), gives
it ranks 0..n-1 in rank order (``renumber_R``) and uses it as the
instance's R with resource-define method ``job-info`` (RFC 44); later it
follows the job's eventlog for ``resource-update`` entries that move the
job's expiration (``update_expiration``).  The pure parts are here;
jobmgr/resource/module.py does the I/O.  See specs/resource-service.md.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["METHOD", "ParentJob", "R_from_lookup", "parent_job", "renumber_R",
           "update_expiration"]

#: the resource-define method of an R taken from the parent's job
METHOD = "job-info"


@dataclass(frozen=True, slots=True)
class ParentJob:
    """Where the parent instance is, and which of its jobs this instance is."""

    uri: str
    jobid: int

    @property
    def f58(self) -> str:
        from flux.job.JobID import JobID

        return JobID(self.jobid).f58

    def lookup_request(self) -> dict[str, Any]:
        """The ``job-info.lookup`` payload: the job's R with its resource-updates
        applied, and the eventlog they were read from (see ``R_from_lookup``)."""
        from flux.constants import FLUX_JOB_LOOKUP_CURRENT

        return {"id": self.jobid, "keys": ["R", "eventlog"], "flags": FLUX_JOB_LOOKUP_CURRENT}

    def watch_request(self) -> dict[str, Any]:
        """The ``job-info.eventlog-watch`` payload for the job's main eventlog."""
        return {"id": self.jobid, "path": "eventlog", "flags": 0}


def parent_job(attr: Callable[[str], str | None]) -> ParentJob | None:
    """The parent job from broker attributes (ATTR(name) -> value or None).

    None when the instance was not started inside another (no
    ``parent-uri`` or no ``jobid``); ValueError when ``jobid`` is not a
    job id in any encoding flux.job.JobID reads (F58, decimal, hex, ...).
    """
    from flux.job.JobID import JobID, JobIDError

    uri, text = attr("parent-uri"), attr("jobid")
    if not uri or not text:
        return None
    try:
        jobid = int(JobID(text))
    except (JobIDError, ValueError, TypeError) as exc:
        raise ValueError(f"jobid attribute {text!r}: {exc}") from None
    return ParentJob(uri, jobid)


def R_from_lookup(resp: Any) -> tuple[dict[str, Any], int]:
    """The R of a ``job-info.lookup`` response (a JSON string or an object), and
    how many entries its ``eventlog`` had (0 if it has none).

    The watch of the eventlog starts with those entries again; their
    resource-updates are already in R, so the watch skips that many.
    """
    if not isinstance(resp, Mapping) or "R" not in resp:
        raise ValueError("job-info.lookup response has no R")
    eventlog = resp.get("eventlog")
    if isinstance(eventlog, str):
        eventlog = eventlog.encode()
    seen = len([ln for ln in eventlog.split(b"\n") if ln.strip()]) \
        if isinstance(eventlog, bytes) else 0
    R = resp["R"]
    if isinstance(R, (str, bytes)):
        try:
            R = orjson.loads(R)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the job's R is not JSON: {exc}") from None
    if not isinstance(R, Mapping):
        raise ValueError(f"the job's R must be an object, got {type(R).__name__}")  # noqa: TRY004
    return dict(R), seen


def renumber_R(R: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    """R with its ranks renumbered 0..n-1 in rank order.

    Host names, every child resource (cores, gpus, ...), properties,
    starttime and expiration stay with their rank; the ``scheduling`` key
    (the parent scheduler's own data, in the parent's numbering) is
    dropped.  ValueError names what is wrong with R.
    """
    from flux.idset import IDset
    from flux.resource import ResourceSet

    try:
        old = ResourceSet(R)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"invalid R: {exc}") from None
    new = ResourceSet()
    number = {rank: i for i, rank in enumerate(old.ranks)}
    for rank, i in number.items():
        children = old.children(rank)
        new.add_rank(i, old.hostname(rank), cores=children.pop("core", None),
                     gpus=children.pop("gpu", None))
        for name, ids in children.items():
            new.add_child(i, name, ids)
    for name, ranks in old.property_ranks().items():
        new.set_property(name, IDset(number[r] for r in ranks))
    new.starttime = old.starttime
    new.expiration = old.expiration
    return new.to_dict()


def update_expiration(resp: Any) -> float | None:
    """The new expiration in one ``job-info.eventlog-watch`` response, if any.

    A response is ``{"event": "<RFC 18 line>"}`` (an object is accepted
    too); only a ``resource-update`` entry with a numeric ``expiration``
    >= 0 counts.  Anything else, malformed entries included, gives None.
    """
    event = resp.get("event") if isinstance(resp, Mapping) else None
    if isinstance(event, (str, bytes)):
        try:
            event = orjson.loads(event)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(event, Mapping) or event.get("name") != "resource-update":
        return None
    context = event.get("context")
    value = context.get("expiration") if isinstance(context, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)
