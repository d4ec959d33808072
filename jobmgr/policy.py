"""What job-ingest decides about one submission, as pure functions over data.

``parse_job_policy(config)`` reads the ``[policy]`` and ``[queues]`` tables
(RFC 33, flux-config-policy(5), flux-config-queues(5)) into a ``JobPolicy``.
``prepare(payload, userid, owner, policy, queue_open)`` turns one
``job-ingest.submit`` payload into a ``Prepared`` job: request checked
(flags, urgency), jobspec loaded and validated, defaults applied, queue
resolved and checked, queue requirements added as constraints, limits
checked.  Every refusal is a ``FluxError`` whose text names the problem.
``make_J`` builds the unsigned J stored next to the jobspec.

Flags: a submit request carries flux-core's submit flags (PRE_SIGNED 1,
DEBUG 2, WAITABLE 4, NOVALIDATE 8); the ``submit`` event carries job flags
(debug 1, waitable 2, novalidate 4: jobmgr.events.JobFlag), so
``event_flags`` shifts out PRE_SIGNED.
"""
from __future__ import annotations

import errno
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from eventstore.eventlog import json_type
from flux.errors import FluxError
from flux.util.fsd import fsd, parse_fsd
from jobmgr.priority import check_urgency
from flux.job.summary import JobspecSummary, summarize

__all__ = [
    "Limits", "Access", "Policy", "QueueConfig", "JobPolicy", "Prepared",
    "SUBMIT_PRE_SIGNED", "SUBMIT_DEBUG", "SUBMIT_WAITABLE", "SUBMIT_NOVALIDATE",
    "parse_job_policy", "prepare", "event_flags", "make_J", "load_jobspec",
    "add_constraint", "check_access", "check_updated",
    "check_queue_name",
]

SUBMIT_PRE_SIGNED = 1
SUBMIT_DEBUG = 2
SUBMIT_WAITABLE = 4
SUBMIT_NOVALIDATE = 8
_SUBMIT_ALL = SUBMIT_PRE_SIGNED | SUBMIT_DEBUG | SUBMIT_WAITABLE | SUBMIT_NOVALIDATE
_OWNER_ONLY = ((SUBMIT_WAITABLE, "waitable"), (SUBMIT_NOVALIDATE, "novalidate"))

_SIZE_KEYS = ("nnodes", "ncores", "ngpus")


@dataclass(slots=True, frozen=True)
class Limits:
    """``policy.limits``: None = not configured; 0 duration / -1 size = unlimited."""

    duration: float | None = None
    max: Mapping[str, int] = field(default_factory=dict)
    min: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Access:
    """``policy.access``: who may submit (None = anyone)."""

    allow_users: frozenset[int] | None = None
    allow_groups: frozenset[int] | None = None

    @property
    def restricted(self) -> bool:
        return self.allow_users is not None or self.allow_groups is not None


@dataclass(slots=True, frozen=True)
class Policy:
    """One policy table: jobspec defaults, limits and access."""

    default_duration: float | None = None
    default_queue: str | None = None
    limits: Limits = field(default_factory=Limits)
    access: Access = field(default_factory=Access)


@dataclass(slots=True, frozen=True)
class QueueConfig:
    name: str
    requires: tuple[str, ...] = ()
    policy: Policy = field(default_factory=Policy)   # the general policy with overrides


@dataclass(slots=True, frozen=True)
class JobPolicy:
    """The whole submission policy: the general table and the named queues."""

    general: Policy = field(default_factory=Policy)
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)

    @property
    def named(self) -> bool:
        """True when queues are configured (then every queue is named)."""
        return bool(self.queues)

    @property
    def default_queue(self) -> str | None:
        return self.general.default_queue

    def policy_for(self, queue: str | None) -> Policy:
        if queue is not None and queue in self.queues:
            return self.queues[queue].policy
        return self.general


# --- configuration ---------------------------------------------------------------

def _table(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a table, got {type(value).__name__}")
    return value


def _duration(value: Any, where: str) -> float:
    try:
        secs = parse_fsd(value)
    except ValueError:
        raise ValueError(f"{where}: invalid duration {value!r} (use an FSD such as '30m')") \
            from None
    return secs


def _unknown(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown key (known: {', '.join(known)})")


def _parse_limits(table: Mapping[str, Any], where: str, base: Limits) -> Limits:
    _unknown(table, ("duration", "job-size"), where)
    duration = base.duration
    if "duration" in table:
        duration = _duration(table["duration"], f"{where}.duration")
    size = _table(table.get("job-size"), f"{where}.job-size")
    _unknown(size, ("max", "min"), f"{where}.job-size")
    bounds: dict[str, dict[str, int]] = {"max": dict(base.max), "min": dict(base.min)}
    for which in ("max", "min"):
        sub = _table(size.get(which), f"{where}.job-size.{which}")
        _unknown(sub, _SIZE_KEYS, f"{where}.job-size.{which}")
        for key, value in sub.items():
            if type(value) is not int or value < -1:
                raise ValueError(f"{where}.job-size.{which}.{key}: must be an integer >= -1 "
                                 f"(-1 = unlimited), got {value!r}")
            bounds[which][key] = value
    return Limits(duration, bounds["max"], bounds["min"])


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: must be an array of names")
    return value


def _parse_access(table: Mapping[str, Any], where: str, base: Access) -> Access:
    import grp
    import pwd

    _unknown(table, ("allow-user", "allow-group"), where)
    users, groups = base.allow_users, base.allow_groups
    if "allow-user" in table:
        uids = set()
        for name in _names(table["allow-user"], f"{where}.allow-user"):
            if name.isdigit():
                uids.add(int(name))
                continue
            try:
                uids.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                raise ValueError(f"{where}.allow-user: unknown user '{name}'") from None
        users = frozenset(uids)
    if "allow-group" in table:
        gids = set()
        for name in _names(table["allow-group"], f"{where}.allow-group"):
            try:
                gids.add(int(name) if name.isdigit() else grp.getgrnam(name).gr_gid)
            except KeyError:
                raise ValueError(f"{where}.allow-group: unknown group '{name}'") from None
        groups = frozenset(gids)
    return Access(users, groups)


def _parse_policy(table: Mapping[str, Any], where: str, base: Policy) -> Policy:
    _unknown(table, ("jobspec", "limits", "access"), where)
    jobspec = _table(table.get("jobspec"), f"{where}.jobspec")
    _unknown(jobspec, ("defaults",), f"{where}.jobspec")
    defaults = _table(jobspec.get("defaults"), f"{where}.jobspec.defaults")
    _unknown(defaults, ("system",), f"{where}.jobspec.defaults")
    system = _table(defaults.get("system"), f"{where}.jobspec.defaults.system")
    _unknown(system, ("duration", "queue"), f"{where}.jobspec.defaults.system")
    duration = base.default_duration
    if "duration" in system:
        duration = _duration(system["duration"], f"{where}.jobspec.defaults.system.duration")
    queue = base.default_queue
    if "queue" in system:
        queue = system["queue"]
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"{where}.jobspec.defaults.system.queue: must be a non-empty "
                             f"string, got {queue!r}")
    limits = _parse_limits(_table(table.get("limits"), f"{where}.limits"), f"{where}.limits",
                           base.limits)
    access = base.access
    if "access" in table:
        access = _parse_access(_table(table["access"], f"{where}.access"), f"{where}.access",
                               base.access)
    return Policy(duration, queue, limits, access)


def parse_job_policy(config: Mapping[str, Any]) -> JobPolicy:
    """Read ``[policy]`` and ``[queues]`` from the instance config.

    Raises ValueError naming the key for anything malformed, an unknown
    default queue, or a default queue with no queues configured.
    """
    general = _parse_policy(_table(config.get("policy"), "policy"), "policy", Policy())
    queues: dict[str, QueueConfig] = {}
    for name, qtable in _table(config.get("queues"), "queues").items():
        where = f"queues.{name}"
        qtable = _table(qtable, where)
        _unknown(qtable, ("requires", "policy"), where)
        requires = qtable.get("requires", [])
        if not isinstance(requires, list) or not all(isinstance(r, str) and r for r in requires):
            raise ValueError(f"{where}.requires: must be an array of property names")
        policy = _parse_policy(_table(qtable.get("policy"), f"{where}.policy"),
                               f"{where}.policy", general)
        queues[name] = QueueConfig(name, tuple(requires), policy)
    default = general.default_queue
    if default is not None:
        if not queues:
            raise ValueError(f"policy.jobspec.defaults.system.queue: default queue '{default}' "
                             "is set but no queues are configured")
        if default not in queues:
            raise ValueError(f"policy.jobspec.defaults.system.queue: '{default}' is not a "
                             f"configured queue (queues: {', '.join(sorted(queues))})")
    return JobPolicy(general, queues)


# --- one submission -----------------------------------------------------------------

@dataclass(slots=True)
class Prepared:
    """A submission that passed every check ingest can make by itself."""

    userid: int
    urgency: int
    flags: int                 # job flags as in the submit event
    jobspec: dict[str, Any]    # with defaults and queue constraints applied
    original: Any              # the jobspec as submitted, for J
    queue: str | None
    summary: JobspecSummary | None


class JobspecMemo:
    """Jobspecs that passed validation, with their summaries, by their JSON
    without ``attributes.system.environment``.

    A burst is often one jobspec many times (``flux submit --cc``, whose
    copies differ only in their environment's FLUX_JOB_CC): each copy after
    the first has only its environment checked, and no summary made (a
    summary reads nothing of the environment), ~20 us of ingest's work per
    job.  Keys must come from objects decoded from JSON (a submission from
    the wire), for which different objects have different encodings; only
    successes are kept, so refusals say what they always said.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._ok: dict[bytes, JobspecSummary | None] = {}
        self.hits = 0

    @staticmethod
    def key(jobspec: Mapping[str, Any]) -> bytes | None:
        """JOBSPEC's key, or None if it is not shaped for one."""
        attrs = jobspec.get("attributes")
        system = attrs.get("system") if type(attrs) is dict else None
        if type(system) is not dict:
            return None
        rest = {k: v for k, v in system.items() if k != "environment"}
        return orjson.dumps({**jobspec, "attributes": {**attrs, "system": rest}})

    def get(self, key: bytes) -> tuple[bool, JobspecSummary | None]:
        """(whether KEY's jobspec passed validation, its summary if one was made)."""
        if key in self._ok:
            self.hits += 1
            return True, self._ok[key]
        return False, None

    def add(self, key: bytes, summary: JobspecSummary | None) -> None:
        ok = self._ok
        if key not in ok and len(ok) >= self.size:
            del ok[next(iter(ok))]      # oldest first: bursts reuse the newest
        ok[key] = summary


def event_flags(submit_flags: int) -> int:
    """Submit-request flags -> the job flags of the submit event."""
    return (submit_flags & (SUBMIT_DEBUG | SUBMIT_WAITABLE | SUBMIT_NOVALIDATE)) >> 1


def _einval(text: str) -> FluxError:
    return FluxError(errno.EINVAL, text)


#: how deep orjson (and so a jobspec) may nest objects and arrays
_JSON_DEPTH = 1024


def load_jobspec(value: Any) -> dict[str, Any]:
    """A jobspec object, or its JSON (or YAML) text, as a dict (EINVAL naming the problem)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise _einval(f"jobspec must be an object or a JSON string, not {json_type(value)}")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        from flux.job.Jobspec import nonfinite_error

        if "depth limit exceeded" in str(exc):
            raise _einval(f"invalid jobspec: nested more than {_JSON_DEPTH} levels deep "
                          f"({exc})") from None
        bad_number = nonfinite_error(value)
        if bad_number:
            raise _einval(f"invalid jobspec: {bad_number}") from None
        try:
            import yaml

            doc = yaml.safe_load(value)
        except Exception:  # noqa: BLE001 - any YAML failure: report the JSON one
            raise _einval(f"jobspec is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _einval("jobspec must be a JSON object")
    return doc


def _jobspec_of_J(value: Any, userid: int) -> dict[str, Any]:
    J = load_jobspec(value)
    mech = J.get("mech", "none")
    if mech != "none":
        raise _einval(f"J: signing mechanism '{mech}' is not supported (only 'none')")
    if "userid" in J and J["userid"] != userid:
        raise FluxError(errno.EPERM, f"J: signed by userid {J['userid']!r}, "
                                     f"submitted by {userid}")
    if "jobspec" not in J:
        raise _einval("J: missing key 'jobspec'")
    return load_jobspec(J["jobspec"])


def _validate_v1(jobspec: Mapping[str, Any]) -> None:
    from flux.job.Jobspec import validate_jobspec

    try:
        validate_jobspec(jobspec, require_version=1)
    except (ValueError, TypeError, OSError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _einval(f"invalid jobspec: {text}") from None


def _validate_environment(system: Mapping[str, Any]) -> None:
    """What ``_validate_v1`` checks of attributes.system.environment, and nothing else."""
    from flux.job.Jobspec import check_environment

    try:
        check_environment(system)
    except (ValueError, TypeError) as exc:
        raise _einval(f"invalid jobspec: {exc}") from None


def _system(jobspec: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = jobspec.get("attributes")
    system = attrs.get("system") if isinstance(attrs, Mapping) else None
    return system if isinstance(system, Mapping) else {}


def _with_system(jobspec: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of JOBSPEC with attributes.system keys replaced; shared below that."""
    out = dict(jobspec)
    attrs = dict(out.get("attributes") or {})
    system = dict(attrs.get("system") or {})
    system.update(updates)
    attrs["system"] = system
    out["attributes"] = attrs
    return out


def check_queue_name(policy: JobPolicy, queue: str | None) -> None:
    """EINVAL unless QUEUE names a configured queue (None: only without queues)."""
    if policy.named:
        if queue is None:
            raise _einval("no queue was specified and no default queue is configured "
                          f"(queues: {', '.join(sorted(policy.queues))})")
        if queue not in policy.queues:
            raise _einval(f"invalid queue '{queue}' (queues: "
                          f"{', '.join(sorted(policy.queues))})")
    elif queue is not None:
        raise _einval(f"invalid queue '{queue}': no queues are configured")


def add_constraint(existing: Any, requires: tuple[str, ...]) -> dict[str, Any]:
    """RFC 31: AND the queue's required properties into the job's constraints."""
    props = {"properties": list(requires)}
    if not existing:
        return props
    return {"and": [existing, props]}


def _user_groups(userid: int) -> set[int]:
    import os
    import pwd

    try:
        pw = pwd.getpwuid(userid)
    except KeyError:
        return set()
    return set(os.getgrouplist(pw.pw_name, pw.pw_gid))


def check_access(access: Access, userid: int, queue: str | None,
                 groups_of: Callable[[int], set[int]] = _user_groups) -> None:
    """EPERM unless USERID is allowed by ``policy.access`` (when it restricts anyone)."""
    if not access.restricted:
        return
    if access.allow_users is not None and userid in access.allow_users:
        return
    if access.allow_groups is not None and groups_of(userid) & access.allow_groups:
        return
    where = f"queue '{queue}'" if queue else "this instance"
    raise FluxError(errno.EPERM, f"user {userid} is not allowed to submit jobs to {where}")


def _check_limits(summary: JobspecSummary, policy: Policy, queue: str | None) -> None:
    where = f" of queue '{queue}'" if queue else ""
    limits = policy.limits
    if limits.duration and math.isfinite(limits.duration):
        if summary.duration == 0 or summary.duration > limits.duration:
            asked = "unlimited" if summary.duration == 0 else fsd(summary.duration)
            raise _einval(f"requested duration ({asked}) exceeds policy limit of "
                          f"{fsd(limits.duration)}{where}")
    counts = {"nnodes": summary.nnodes, "ncores": summary.ncores, "ngpus": summary.ngpus}
    for key, value in counts.items():
        top = limits.max.get(key, -1)
        if top >= 0 and value > top:
            raise _einval(f"requested {key} ({value}) exceeds policy limit of {top}{where}")
        low = limits.min.get(key, -1)
        if low >= 0 and value < low:
            raise _einval(f"requested {key} ({value}) is below policy minimum of {low}{where}")


def prepare(payload: Any, userid: int, owner: bool, policy: JobPolicy,
            queue_open: Callable[[str | None], str | None],
            memo: JobspecMemo | None = None) -> Prepared:
    """Check one submit request and build the job to be written.

    ``queue_open(name)`` returns None when the queue accepts submissions,
    else the refusal text (e.g. "job submission is disabled: maintenance").
    MEMO (only for a payload decoded from JSON): jobspecs validated before.
    Raises FluxError: EPROTO for a malformed request, EPERM for what a
    guest may not ask, EINVAL for a bad jobspec, queue or limit.
    """
    if not isinstance(payload, Mapping):
        raise FluxError(errno.EPROTO, "job-ingest.submit: payload must be an object")
    flags = payload.get("flags", 0)
    if type(flags) is not int or flags < 0:
        raise FluxError(errno.EPROTO, f"job-ingest.submit: flags must be a non-negative "
                                      f"integer, got {flags!r}")
    if flags & ~_SUBMIT_ALL:
        raise _einval(f"invalid submit flags {flags:#x} (known: pre-signed 0x1, debug 0x2, "
                      "waitable 0x4, novalidate 0x8)")
    if not owner:
        for bit, name in _OWNER_ONLY:
            if flags & bit:
                raise FluxError(errno.EPERM, f"only the instance owner can submit with "
                                             f"flag '{name}'")
    urgency = payload.get("urgency", 16)
    check_urgency(urgency, owner)

    if "J" in payload:
        jobspec = _jobspec_of_J(payload["J"], userid)
    elif "jobspec" in payload:
        jobspec = load_jobspec(payload["jobspec"])
    else:
        raise FluxError(errno.EPROTO, "job-ingest.submit: payload needs 'jobspec' or 'J'")
    original = jobspec

    key: bytes | None = None
    known, known_summary = False, None
    if memo is not None and not flags & SUBMIT_NOVALIDATE:
        key = memo.key(jobspec)
        if key is not None:
            known, known_summary = memo.get(key)
    if known:
        _validate_environment(jobspec["attributes"]["system"])
    elif not flags & SUBMIT_NOVALIDATE:
        _validate_v1(jobspec)

    system = _system(jobspec)
    queue = system.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise _einval(f"attributes.system.queue: must be a non-empty string, got {queue!r}")
    updates: dict[str, Any] = {}
    if queue is None and policy.default_queue is not None:
        queue = policy.default_queue
        updates["queue"] = queue
    check_queue_name(policy, queue)
    refusal = queue_open(queue)
    if refusal is not None:
        raise _einval(refusal)

    pol = policy.policy_for(queue)
    if not owner:
        check_access(pol.access, userid, queue)
    duration = system.get("duration", 0)
    if (duration == 0 or duration is None) and pol.default_duration is not None:
        updates["duration"] = pol.default_duration
    if queue is not None and policy.queues[queue].requires:
        updates["constraints"] = add_constraint(system.get("constraints"),
                                                policy.queues[queue].requires)
    if updates:
        jobspec = _with_system(jobspec, updates)

    if key is not None and not updates:
        # the summary of what was validated (the environment aside, which it does not read)
        if known_summary is not None:
            summary: JobspecSummary | None = known_summary
            _check_limits(summary, pol, queue)
        else:
            summary = _summary_within_limits(jobspec, pol, queue, False)
        memo.add(key, summary)  # type: ignore[union-attr]  # key implies memo
        return Prepared(userid, urgency, event_flags(flags), jobspec, original, queue, summary)
    if key is not None and not known:
        memo.add(key, None)  # type: ignore[union-attr]  # validated; summary not this one's
    summary = _summary_within_limits(jobspec, pol, queue, bool(flags & SUBMIT_NOVALIDATE))
    return Prepared(userid, urgency, event_flags(flags), jobspec, original, queue, summary)


def _summary_within_limits(jobspec: Mapping[str, Any], pol: Policy, queue: str | None,
                           novalidate: bool) -> JobspecSummary | None:
    summary: JobspecSummary | None = None
    try:
        summary = summarize(jobspec)
    except ValueError as exc:
        if not novalidate:
            raise _einval(f"invalid jobspec: {exc}") from None
    if summary is not None:
        _check_limits(summary, pol, queue)
    return summary


def check_updated(jobspec: Mapping[str, Any], userid: int, owner: bool, policy: JobPolicy,
                  novalidate: bool = False) -> JobspecSummary | None:
    """Check a job's jobspec with updates applied as a submission is checked.

    The jobspec V1 rules (unless the job was submitted with novalidate),
    access to its queue for a guest, and the queue's (or the instance's)
    limits; EINVAL/EPERM with the same texts a submission gets.
    """
    if not novalidate:
        _validate_v1(jobspec)
    queue = _system(jobspec).get("queue")
    if not isinstance(queue, str):
        queue = None
    pol = policy.policy_for(queue)
    if not owner:
        check_access(pol.access, userid, queue)
    return _summary_within_limits(jobspec, pol, queue, novalidate)


def make_J(userid: int, jobspec: Any) -> dict[str, Any]:
    """The unsigned J: who submitted what (RFC 16 key ``J``)."""
    return {"version": 1, "mech": "none", "userid": userid, "jobspec": jobspec}
