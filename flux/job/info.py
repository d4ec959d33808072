"""``flux.job.info``: job-list records as objects, and the ``flux jobs`` format.

``JobInfo(resp)`` wraps one job-list response dict: every RFC 43 attribute
reads as an attribute (with Flux's defaults for those not returned), and
derived values -- ``state``, ``status``, ``result``, ``returncode``,
``runtime``, ``t_remaining``, ``username``, ``exception.*``,
``annotations.*``, ``uri`` -- are computed on first use and remembered.
A job that is a running Flux instance also has ``instance`` (an
``InstanceInfo``: the child's job statistics and resources, fetched from
the child on first use).  ``JobInfoFormat`` is the ``flux jobs``
OutputFormat with its column titles.
"""
from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from typing import Any

import orjson

from flux.util.fsd import fsd as _fsd
from flux.util.outputformat import OutputFormat

__all__ = [
    "JobInfo", "JobInfoFormat", "AnnotationsInfo", "ExceptionInfo", "InfoList",
    "InstanceInfo", "StatsInfo", "EmptyInfo",
    "statetostr", "resulttostr", "statustostr", "fsd", "get_username", "job_fields_to_attrs",
]

# RFC 21 values (the same as jobmgr.states; flux/ must not import jobmgr)
_STATES = {1: ("NEW", "N"), 2: ("DEPEND", "D"), 4: ("PRIORITY", "P"), 8: ("SCHED", "S"),
           16: ("RUN", "R"), 32: ("CLEANUP", "C"), 64: ("INACTIVE", "I")}
_RESULTS = {1: ("COMPLETED", "CD"), 2: ("FAILED", "F"), 4: ("CANCELED", "CA"),
            8: ("TIMEOUT", "TO")}
_PENDING = 2 | 4 | 8
_RUNNING = 16 | 32
_INACTIVE = 64
_CANCELED = 4
_FAILED = 2


def statetostr(stateid: int, singlechar: bool = False) -> str:
    """State value -> ``"RUN"`` (or ``"R"``)."""
    text = _STATES.get(stateid)
    if text is None:
        return "?" if singlechar else "(unknown)"
    return text[1] if singlechar else text[0]


def resulttostr(resultid: int | str, singlechar: bool = False) -> str:
    """Result value -> ``"COMPLETED"`` (or ``"CD"``); ``""`` (no result yet) -> ``""``."""
    if resultid == "":
        return ""
    text = _RESULTS.get(resultid)  # type: ignore[arg-type]
    if text is None:
        return "?" if singlechar else "(unknown)"
    return text[1] if singlechar else text[0]


def statustostr(stateid: int, resultid: int | str, abbrev: bool = False) -> str:
    """The user-facing status: PENDING/RUNNING while active, else the result.

    Abbreviated as flux-jobs(1) says: P, R, CD, F, CA, TO.
    """
    if stateid & _PENDING:
        return "P" if abbrev else "PENDING"
    if stateid & _RUNNING:
        return "R" if abbrev else "RUNNING"
    if stateid & 1:
        return "N" if abbrev else "NEW"
    return resulttostr(resultid, abbrev)


def fsd(secs: float) -> str:
    """Seconds as a short RFC 23 duration, as ``!F`` shows it."""
    return _fsd(secs)


@functools.lru_cache(maxsize=1024)
def get_username(userid: int) -> str:
    """User name of ``userid``, or the number as a string if it has none."""
    import pwd

    try:
        return pwd.getpwuid(userid).pw_name
    except (KeyError, OverflowError, TypeError):
        return str(userid)


class ExceptionInfo:
    """The job's most severe exception: ``occurred``, ``severity``, ``type``, ``note``.

    Each is ``""`` when the job-list response did not carry it.
    """

    __slots__ = ("occurred", "severity", "type", "note")

    def __init__(self, occurred: Any, severity: Any, _type: Any, note: Any) -> None:
        self.occurred = occurred
        self.severity = severity
        self.type = _type
        self.note = note


class AnnotationsInfo:
    """Dotted access into an annotations object.

    ``info.sched.reason_pending`` is the value if present; a missing key
    gives EMPTY (an empty string whose attributes are EMPTY too), so formats
    over jobs that lack a key still work, conversions (``!F``, ``!D``...)
    included.  A non-empty object formats as JSON.
    """

    __slots__ = ("_data",)

    def __init__(self, annotationsDict: Mapping[str, Any] | None) -> None:
        self._data = dict(annotationsDict) if annotationsDict else {}

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:
            value = self._data[attr]
        except KeyError:
            return EMPTY
        return AnnotationsInfo(value) if isinstance(value, Mapping) else value

    def __bool__(self) -> bool:
        return bool(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AnnotationsInfo):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == other
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return orjson.dumps(self._data).decode() if self._data else ""

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


class InfoList(list):  # type: ignore[type-arg]
    """A list that prints as its comma-separated items (``dependencies``)."""

    def __str__(self) -> str:
        return ",".join(str(x) for x in self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class EmptyInfo(str):
    """A value that is not there: ``""`` in every format spec, false, and its own
    attribute (``{instance.stats.total}`` of a job that is no instance is ``""``).

    A ``str`` so that the ``!P``/``!F``/``!H`` conversions and the ``h``
    suffix see an empty string; a numeric presentation type (``:>5d``) is
    dropped, as for Flux's EmptyObject.
    """

    __slots__ = ()

    def __getattr__(self, attr: str) -> "EmptyInfo":
        if attr.startswith("__"):
            raise AttributeError(attr)
        return EMPTY

    def __format__(self, spec: str) -> str:
        return format("", spec.rstrip("bcdoxXeEfFgGn%"))


EMPTY = EmptyInfo()


class StatsInfo:
    """An instance's job counts (flux.job.JobStats's) that print as
    ``PD:{pending} R:{running} CD:{successful} F:{failed}`` (``instance.stats``)."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._stats, attr)

    def __str__(self) -> str:
        s = self._stats
        return f"PD:{s.pending} R:{s.running} CD:{s.successful} F:{s.failed}"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class InstanceInfo:
    """What a Flux instance says about itself: the ``instance.*`` fields of its job.

    ``InstanceInfo(uri)`` connects to the instance at URI (its local form:
    this client reaches instances through their ``local`` socket), asks
    its job statistics and its scheduler's resource view at once, and
    closes the connection; ``InstanceInfo(handle=h)`` asks through H.
    Attributes: ``stats`` (a StatsInfo: ``pending``, ``running``,
    ``successful``, ``failed``, ``inactive``, ``total``, ...),
    ``resources`` (a flux.resource SchedResourceList: ``all``, ``up``,
    ``down``, ``allocated``, ``free``, each with ``ncores``, ``ngpus``,
    ``nnodes``), and the ratios ``utilization`` (allocated cores / all
    cores), ``gpu_utilization`` (the same for GPUs, ``""`` with none) and
    ``progress`` (inactive jobs / all jobs, ``""`` with none).  An
    instance that cannot be reached (not running, not ours, gone, no URI)
    gives ``""`` for every field (``initialized`` is False).
    """

    def __init__(self, uri: Any = None, handle: Any = None) -> None:
        self.initialized = False
        self.stats: Any = EMPTY
        self.resources: Any = EMPTY
        if not uri and handle is None:
            return
        h = handle
        try:
            if h is None:
                from flux.core.handle import Flux
                from flux.uri import JobURI

                h = Flux(JobURI(str(uri)).local)
            from flux.job.stats import JobStats
            from flux.resource.list import resource_list

            stats_rpc = h.rpc("job-list.job-stats", {})
            resources_rpc = resource_list(h)
            stats = JobStats(h)
            stats._apply(stats_rpc.get())
            self.resources = resources_rpc.get()
            self.stats = StatsInfo(stats)
            self.initialized = True
        except (OSError, ValueError, TypeError, KeyError):
            self.stats = self.resources = EMPTY
        finally:
            if handle is None and h is not None:
                h.close()

    @property
    def utilization(self) -> float | str:
        if self.initialized and self.resources.all.ncores:
            return self.resources.allocated.ncores / self.resources.all.ncores
        return ""

    @property
    def gpu_utilization(self) -> float | str:
        if self.initialized and self.resources.all.ngpus > 0:
            return self.resources.allocated.ngpus / self.resources.all.ngpus
        return ""

    @property
    def progress(self) -> float | str:
        if self.initialized and self.stats.total > 0:
            return self.stats.inactive / self.stats.total
        return ""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return EMPTY


_MISSING = object()


class JobInfo:
    """One job from a job-list response, with derived fields computed lazily."""

    # values for attributes the response may leave out
    defaults: dict[str, Any] = {
        "t_depend": 0.0, "t_priority": 0.0, "t_sched": 0.0, "t_run": 0.0,
        "t_cleanup": 0.0, "t_inactive": 0.0, "expiration": 0.0, "duration": 0.0,
        "nnodes": "", "ranks": "", "nodelist": "", "priority": "", "success": "",
        "result": "", "waitstatus": "", "urgency": "", "userid": "", "name": "",
        "queue": "", "project": "", "bank": "", "cwd": "", "ntasks": "", "ncores": "",
        "ngpus": "",
    }

    def __init__(self, info_resp: Mapping[str, Any]) -> None:
        from flux.job.JobID import JobID

        data = dict(self.defaults)
        data.update(info_resp)
        if "id" not in data:
            raise ValueError("job-list response has no 'id'")
        data["id"] = JobID(data["id"])
        data["state_id"] = data.pop("state", "")
        data["result_id"] = data.pop("result", "")
        data["dependencies"] = InfoList(data.get("dependencies") or [])
        self.__dict__["_data"] = data
        self.__dict__["_memo"] = {}
        self.__dict__["_resp"] = info_resp

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        memo = self.__dict__["_memo"]
        value = memo.get(attr, _MISSING)
        if value is not _MISSING:
            return value
        compute = _COMPUTED.get(attr)
        if compute is not None:
            value = compute(self)
            if attr not in _VOLATILE:
                memo[attr] = value
            return value
        data = self.__dict__["_data"]
        if attr in data:
            return data[attr]
        raise AttributeError(f"invalid JobInfo attribute '{attr}'")

    def __setattr__(self, attr: str, value: Any) -> None:
        self.__dict__["_data"][attr] = value
        if attr in _COMPUTED:
            # a value set on a derived attribute (``job.instance = ...``) is what it reads
            self.__dict__["_memo"][attr] = value
        else:
            self.__dict__["_memo"].pop(attr, None)

    def get_instance_info(self) -> "JobInfo":
        """Fetch ``instance`` now (from the child instance, if this job is one); returns self."""
        self.__getattr__("instance")
        return self

    def get_runtime(self) -> float:
        t_run, t_cleanup = self._data["t_run"], self._data["t_cleanup"]
        if t_run and t_cleanup:
            return max(0.0, t_cleanup - t_run)
        if t_run:
            return max(0.0, time.time() - t_run)
        return 0.0

    def get_remaining_time(self) -> float:
        if not (self.state_id if isinstance(self.state_id, int) else 0) & _RUNNING:
            return 0.0
        expiration = self._data["expiration"]
        if not expiration:
            return 0.0
        return max(0.0, expiration - time.time())

    #: derived values ``to_dict`` adds to the attributes
    properties = ("id", "t_submit", "t_remaining", "state", "result", "username", "userid",
                  "urgency", "runtime", "status", "returncode", "dependencies")

    def to_dict(self, filtered: bool = True) -> dict[str, Any]:
        """The job as a dict: its attributes and derived values.

        Keys: every attribute of ``defaults`` plus ``id`` (an int),
        ``jobid`` (F58), ``t_submit``, ``t_remaining``, ``state``,
        ``result`` and ``status`` as names, ``username``, ``userid``,
        ``urgency``, ``runtime``, ``returncode``, ``dependencies`` (a
        list), ``annotations`` and ``exception`` (``occurred``,
        ``severity``, ``type``, ``note``) as dicts.  ``filtered`` drops
        empty strings, unset (zero) ``t_*`` times, a zero ``runtime`` or
        ``expiration``, and gives ``exception = {"occurred": False}`` when
        there was none; ``filtered=False`` keeps them as "" or 0.
        """
        result: dict[str, Any] = {}
        for attr in (*self.defaults, *self.properties):
            try:
                value = getattr(self, attr)
            except AttributeError:
                continue
            if value is not None:
                result[attr] = value
        result["id"] = int(self.id)
        result["jobid"] = self.id.f58
        result["dependencies"] = list(self.dependencies)
        result["annotations"] = self.annotations.to_dict()
        exc = self.exception
        result["exception"] = {"occurred": exc.occurred, "severity": exc.severity,
                               "type": exc.type, "note": exc.note}
        if not filtered:
            return result
        for key in list(result):
            value = result[key]
            if isinstance(value, str) and value == "":
                del result[key]
            elif (key.startswith("t_") or key in ("runtime", "expiration")) \
                    and isinstance(value, (int, float)) and value == 0:
                del result[key]
        if not result["exception"]["occurred"]:
            result["exception"] = {"occurred": False}
        return result

    def response(self) -> dict[str, Any]:
        """The job-list response this JobInfo was built from."""
        out = dict(self.__dict__["_resp"])
        out["id"] = int(out["id"])
        return out


def _state(job: JobInfo) -> str:
    return statetostr(job.state_id) if job.state_id != "" else ""


def _state_single(job: JobInfo) -> str:
    return statetostr(job.state_id, True) if job.state_id != "" else ""


def _status(job: JobInfo) -> str:
    return statustostr(job.state_id, job.result_id) if job.state_id != "" else ""


def _status_abbrev(job: JobInfo) -> str:
    return statustostr(job.state_id, job.result_id, True) if job.state_id != "" else ""


def _returncode(job: JobInfo) -> int | str:
    # Flux's rule: a wait status gives the exit code (or -signum) whatever
    # the state; without one, a canceled job is -128 and a failed one 1
    status = job._data["waitstatus"]
    if isinstance(status, int) and not isinstance(status, bool):
        if os.WIFSIGNALED(status):
            return -os.WTERMSIG(status)
        return os.WEXITSTATUS(status)
    if job.result_id == _CANCELED:
        return -128
    if job.result_id == _FAILED:
        return 1
    return ""


def _exception(job: JobInfo) -> ExceptionInfo:
    data = job._data
    return ExceptionInfo(data.get("exception_occurred", ""), data.get("exception_severity", ""),
                         data.get("exception_type", ""), data.get("exception_note", ""))


def _annotations(job: JobInfo) -> AnnotationsInfo:
    return AnnotationsInfo(job._data.get("annotations"))


def _uri(job: JobInfo) -> Any:
    # the URI a job that is a Flux instance recorded (annotations.user.uri)
    uri = job.annotations.user.uri
    if isinstance(uri, str) and uri:
        from flux.uri import JobURI

        try:
            return JobURI(uri)
        except ValueError:
            pass
    return EMPTY


def _instance(job: JobInfo) -> InstanceInfo:
    if job.uri and job.state_id == 16:  # RUN
        return InstanceInfo(job.uri)
    return InstanceInfo()


def _contextual_info(job: JobInfo) -> str:
    # flux-jobs(1): what the job waits for while pending, else its nodes
    state = job.state_id
    if state == 4:          # PRIORITY
        return "priority-wait"
    if state == 2:          # DEPEND
        return f"depends:{job.dependencies}"
    if state == 8:          # SCHED
        if job.urgency == 0:
            return "held"
        t_estimate = job.annotations.sched.t_estimate
        if isinstance(t_estimate, (int, float)) and not isinstance(t_estimate, bool):
            eta = t_estimate - time.time()
            return "eta:now" if eta < 0 else f"eta:{fsd(eta)}"
        return ""
    return job.nodelist


def _contextual_time(job: JobInfo) -> float:
    # the runtime once the job ran, else the duration it asked for
    if job._data["t_run"]:
        return job.runtime
    return job.duration


def _inactive_reason(job: JobInfo) -> str:
    # why an inactive job ended, worded as Flux's flux-jobs prints it
    if job.state_id != _INACTIVE:
        return ""
    result, exc = job.result_id, job.exception
    if result == _CANCELED:
        return f"Canceled: {exc.note}" if exc.note else "Canceled"
    if result == 8:         # TIMEOUT
        return "Timeout"
    returncode = job.returncode
    if result == _FAILED:
        # an exec exception is explained by the return code (e.g. 127)
        if exc.occurred and exc.type != "exec":
            return f"Exception: type={exc.type} note={exc.note or None}"
        if returncode == 127:
            return "command not found"
        if returncode == 126:
            return "command invoked cannot execute"
        signum = returncode - 128 if isinstance(returncode, int) and returncode > 128 else \
            -returncode if isinstance(returncode, int) and returncode < 0 else 0
        if signum:
            import signal

            try:
                return signal.strsignal(signum) or f"Signaled {signum}"
            except ValueError:
                return f"Signaled {signum}"
    return f"Exit {returncode}"


_COMPUTED = {
    "contextual_info": _contextual_info,
    "contextual_time": _contextual_time,
    "inactive_reason": _inactive_reason,
    "state": _state,
    "state_single": _state_single,
    "result": lambda job: resulttostr(job.result_id),
    "result_abbrev": lambda job: resulttostr(job.result_id, True),
    "status": _status,
    "status_abbrev": _status_abbrev,
    "username": lambda job: get_username(job.userid) if job.userid != "" else "",
    "runtime": JobInfo.get_runtime,
    "t_remaining": JobInfo.get_remaining_time,
    "returncode": _returncode,
    "exception": _exception,
    "annotations": _annotations,
    "sched": lambda job: job.annotations.sched,
    "user": lambda job: job.annotations.user,
    "uri": _uri,
    "instance": _instance,
}
# depend on the clock: recomputed at each access for active jobs
_VOLATILE = frozenset({"t_remaining", "contextual_info", "contextual_time"})


class JobInfoFormat(OutputFormat):
    """OutputFormat for JobInfo objects with the ``flux jobs`` column titles.

    Any ``annotations.X``, ``sched.X`` or ``user.X`` field is accepted; its
    title is the upper-cased path (without ``annotations.``).
    """

    # Flux's names for the formatters of the rows and of the header, which a
    # script may subclass (set ``formatter`` to use its own for the rows)
    from flux.util.outputformat import UtilFormatter as JobFormatter
    from flux.util.outputformat import _HeaderFormatter as HeaderFormatter

    headings: Mapping[str, str] = {
        "id": "JOBID", "id.dec": "JOBID", "id.hex": "JOBID", "id.f58": "JOBID",
        "id.f58plain": "JOBID", "id.kvs": "JOBID", "id.words": "JOBID", "id.dothex": "JOBID",
        "id.emoji": "JOBID",
        "userid": "UID", "username": "USER", "urgency": "URG", "priority": "PRI",
        "state": "STATE", "state_single": "S", "name": "NAME", "cwd": "CWD",
        "queue": "QUEUE", "project": "PROJECT", "bank": "BANK",
        "ntasks": "NTASKS", "ncores": "NCORES", "ngpus": "NGPUS", "duration": "DURATION",
        "nnodes": "NNODES", "expiration": "EXPIRATION", "t_remaining": "T_REMAINING",
        "ranks": "RANKS", "nodelist": "NODELIST", "success": "SUCCESS",
        "result": "RESULT", "result_abbrev": "RS", "returncode": "RC",
        "waitstatus": "WSTATUS", "t_submit": "T_SUBMIT", "t_depend": "T_DEPEND",
        "t_priority": "T_PRIORITY", "t_sched": "T_SCHED", "t_run": "T_RUN",
        "t_cleanup": "T_CLEANUP", "t_inactive": "T_INACTIVE", "runtime": "RUNTIME",
        "status": "STATUS", "status_abbrev": "ST", "dependencies": "DEPENDENCIES",
        "contextual_info": "INFO", "contextual_time": "TIME",
        "inactive_reason": "INACTIVE-REASON",
        "exception.occurred": "EXCEPTION-OCCURRED", "exception.severity": "EXCEPTION-SEVERITY",
        "exception.type": "EXCEPTION-TYPE", "exception.note": "EXCEPTION-NOTE",
        "annotations": "ANNOTATIONS",
        "annotations.sched.t_estimate": "T_ESTIMATE",
        "annotations.sched.reason_pending": "REASON",
        "annotations.sched.resource_summary": "RESOURCES",
        "sched": "SCHED", "sched.t_estimate": "T_ESTIMATE",
        "sched.reason_pending": "REASON", "sched.resource_summary": "RESOURCES",
        "user": "USER",
        "uri": "URI", "uri.local": "URI", "uri.remote": "URI",
        "instance.stats": "STATS", "instance.stats.total": "NJOBS",
        "instance.stats.pending": "PD", "instance.stats.running": "R",
        "instance.stats.successful": "CD", "instance.stats.failed": "F",
        "instance.utilization": "CORE%", "instance.gpu_utilization": "GPU%",
        "instance.progress": "PROG",
        **{f"instance.resources.{state}.{kind}": title
           for state, titles in (("all", ("NODES", "CORES", "GPUS")),
                                 ("up", ("UP",) * 3), ("down", ("DOWN",) * 3),
                                 ("allocated", ("USED",) * 3), ("free", ("FREE",) * 3))
           for kind, title in zip(("nnodes", "ncores", "ngpus"), titles)},
    }

    def __init__(self, fmt: str, headings: Mapping[str, str] | None = None,
                 prepend: str = "0.") -> None:
        table = dict(headings if headings is not None else type(self).headings)
        from string import Formatter

        try:
            parsed = list(Formatter().parse(fmt))
        except ValueError as exc:
            raise ValueError(f"Invalid format {fmt!r}: {exc}") from None
        for _, field, _, _ in parsed:
            if not field or field in table:
                continue
            name = field[2:] if field.startswith("0.") else field
            if name.startswith("annotations."):
                table[name] = name[len("annotations."):].upper()
            elif name.startswith(("sched.", "user.")):
                table[name] = name.upper()
        super().__init__(fmt, headings=table, prepend=prepend)



# format field -> the job-list attributes it needs (``id`` always comes); the
# same fields as JobInfoFormat.headings (flux-core's *_emoji fields are not
# in the flux-jobs(1) page this follows, so neither table has them)
_FIELD_ATTRS: dict[str, tuple[str, ...]] = {
    **{f: () for f in ("id", "id.dec", "id.hex", "id.f58", "id.f58plain", "id.emoji",
                       "id.kvs", "id.words", "id.dothex")},
    **{f: (f,) for f in ("userid", "urgency", "priority", "state", "name", "cwd", "queue",
                         "project", "bank", "ntasks", "ncores", "ngpus", "duration",
                         "nnodes", "ranks", "nodelist", "success", "waitstatus", "result",
                         "t_submit", "t_depend", "t_priority", "t_sched", "t_run",
                         "t_cleanup", "t_inactive", "annotations", "dependencies")},
    "username": ("userid",),
    "state_single": ("state",),
    "returncode": ("waitstatus", "result"),
    "exception.occurred": ("exception_occurred",),
    "exception.severity": ("exception_severity",),
    "exception.type": ("exception_type",),
    "exception.note": ("exception_note",),
    "result_abbrev": ("result",),
    "runtime": ("t_run", "t_cleanup"),
    "status": ("state", "result"), "status_abbrev": ("state", "result"),
    "expiration": ("expiration", "state", "result"),
    "t_remaining": ("expiration", "state", "result"),
    "contextual_info": ("state", "dependencies", "annotations", "nodelist", "priority",
                        "urgency"),
    "contextual_time": ("state", "t_run", "t_cleanup", "duration"),
    "inactive_reason": ("state", "result", "waitstatus", "exception_occurred",
                        "exception_severity", "exception_type", "exception_note"),
    "sched": ("annotations",), "user": ("annotations",),
    "uri": ("annotations",), "uri.local": ("annotations",), "uri.remote": ("annotations",),
}


def job_fields_to_attrs(fields: Any) -> set[str]:
    """The job-list attributes needed to show the ``flux jobs`` format FIELDS.

    ``annotations.*``, ``sched.*`` and ``user.*`` need ``annotations``;
    ``instance.*`` needs ``annotations``, ``state`` and ``result``.
    KeyError for an unknown field, as Flux's.
    """
    if isinstance(fields, str):
        fields = [fields]
    attrs: set[str] = set()
    for field in fields:
        if field.startswith(("annotations.", "sched.", "user.")):
            attrs.add("annotations")
        elif field.startswith("instance."):
            attrs.update(("annotations", "state", "result"))
        else:
            try:
                attrs.update(_FIELD_ATTRS[field])
            except KeyError:
                raise KeyError(field) from None
    return attrs
