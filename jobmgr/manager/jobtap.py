"""Jobtap: Python plugins in the job manager (jobtap-plugins(7), specs/jobtap.md).

A plugin is a Python file (or an importable module) that defines
``flux_plugin_init(p)``, where it registers callbacks for topic globs with
``p.add_handler``.  A callback is ``fn(p, topic, args) -> int | None``;
``args`` carries the job (``id``, ``userid``, ``state``, ``prev_state``,
``urgency``, ``priority``, ``t_submit``, ``jobspec``, ``entry``,
``dependency``) and ``args.out`` what it returns (``priority``).  A negative
return value (or ``p.reject_job``) refuses a ``job.validate`` or
``job.dependency.*`` call; an exception in a callback is logged, counts as
a refusal there and is ignored elsewhere: a plugin's bug never stops the
job manager.

When no plugin is loaded and every builtin is, nothing here runs for any
job (``active`` is False).
"""
from __future__ import annotations

import errno
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from flux.errors import FluxError
from jobmgr.events import PRIORITY_MAX, PRIORITY_MIN
from jobmgr.jobtap_conf import (
    BUILTINS,
    Directive,
    plugin_name,
    select_removals,
    states_entered,
)
from jobmgr.manager.active import ActiveJob
from jobmgr.priority import priority_for
from jobmgr.states import JobState

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["PRIORITY_UNAVAILABLE", "Jobtap", "JobtapArgs", "Plugin"]

#: flux-core C plugins whose work this job manager does itself: a config that loads
#: them (the Administrator's Guide loads perilog.so for [job-manager.prolog]) is fine
BUILT_IN_C_PLUGINS = {
    "perilog.so": "prolog and epilog are built in: [job-manager.prolog] / [job-manager.epilog]",
}
#: ``args.out["priority"]`` when a plugin cannot say yet (``p.priority_unavail``)
PRIORITY_UNAVAILABLE = -1
_D, _P, _S = JobState.DEPEND, JobState.PRIORITY, JobState.SCHED
_TENTATIVE = (_D, _P)      # their callbacks run when the transition is posted


@dataclass(slots=True)
class JobtapArgs:
    """What a callback is told about the job, and ``out``: what it answers."""

    id: int
    userid: int
    state: int
    urgency: int
    priority: int
    t_submit: float
    jobspec: dict[str, Any]
    prev_state: int | None = None
    entry: dict[str, Any] | None = None
    dependency: dict[str, Any] | None = None
    out: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


Callback = Callable[["Plugin", str, JobtapArgs], "int | None"]


@dataclass(slots=True, frozen=True)
class SchemeClaims:
    """``scheme in claims``: whether a plugin judges dependency SCHEME."""

    exact: frozenset[str]
    globs: tuple[str, ...]
    builtin: frozenset[str]

    def __contains__(self, scheme: object) -> bool:
        if scheme in self.exact:
            return True
        if not self.globs or scheme in self.builtin or not isinstance(scheme, str):
            return False
        import fnmatch

        topic = "job.dependency." + scheme
        return any(fnmatch.fnmatchcase(topic, glob) for glob in self.globs)


def redacted(jobspec: dict[str, Any]) -> dict[str, Any]:
    """JOBSPEC without its environment, as plugins see it (jobtap-plugins(7))."""
    attrs = jobspec.get("attributes")
    system = attrs.get("system") if isinstance(attrs, dict) else None
    if not isinstance(system, dict) or "environment" not in system:
        return jobspec
    system = {k: v for k, v in system.items() if k != "environment"}
    return {**jobspec, "attributes": {**attrs, "system": system}}


class Plugin:
    """The handle a plugin gets: registration, its config, and what it may do to jobs."""

    def __init__(self, name: str, path: str, conf: dict[str, Any], tap: Jobtap) -> None:
        self.name = name
        self.path = path
        self.conf = conf
        self._tap = tap
        self.handlers: list[tuple[str, Callback]] = []
        self.log = tap.mgr.log.bind(plugin=name)
        #: the name in its services' topics: flux_plugin_set_name's, else the file's
        #: name without ``.py``
        self.internal_name = name.removesuffix(".py")
        self.services: list[str] = []

    def set_name(self, name: str) -> None:
        """The plugin's own name, used in its service topics (not in ``flux jobtap list``)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError("set_name: a non-empty name without '.' is required")
        self.internal_name = name

    def service_register(self, method: str, fn: Callable[["Plugin", Any], Any],
                         allow_guest: bool = False) -> str:
        """Answer requests to ``job-manager.<name>.<method>`` with FN(p, msg): its
        return value is the response (None: FN responds later, ``p.respond``); an
        exception is an error response. Returns the topic."""
        if not isinstance(method, str) or not method or not callable(fn):
            raise ValueError("service_register: a method name and a callable are required")
        topic = f"job-manager.{self.internal_name}.{method}"
        self._tap.mgr.ctx.add_handler(topic, lambda msg: fn(self, msg), allow_guest=allow_guest)
        self.services.append(topic)
        return topic

    def respond(self, msg: Any, payload: Any = None) -> None:
        self._tap.mgr.ctx.respond(msg, payload)

    def respond_error(self, msg: Any, errnum: int, text: str | None = None) -> None:
        self._tap.mgr.ctx.respond_error(msg, errnum, text)

    # -- registration ------------------------------------------------------------------
    def add_handler(self, topic: str, fn: Callback) -> None:
        """Call FN for every topic matching the glob TOPIC (``job.state.*``)."""
        if not isinstance(topic, str) or not topic or not callable(fn):
            raise ValueError("add_handler: a topic glob and a callable are required")
        self.handlers.append((topic, fn))
        self._tap.changed()

    # -- answers inside a callback -------------------------------------------------------
    def reject_job(self, args: JobtapArgs, text: str) -> int:
        """Refuse the job of a ``job.validate``/``job.dependency.*`` call with TEXT."""
        args.error = text
        return -1

    def priority_unavail(self, args: JobtapArgs) -> int:
        """No priority yet: the job waits in PRIORITY for ``reprioritize_job``."""
        args.out["priority"] = PRIORITY_UNAVAILABLE
        return 0

    # -- acting on jobs --------------------------------------------------------------------
    def post_event(self, jobid: int, name: str, context: dict[str, Any] | None = None) -> None:
        """Append event NAME to the job's eventlog (EINVAL if its state refuses it)."""
        mgr = self._tap.mgr
        job = self._tap.job(jobid)
        mgr.post(job, name, context)
        mgr.progress(job)

    def raise_exception(self, jobid: int, type: str, severity: int, note: str = "") -> None:
        """Raise an exception on the job (severity 0 is fatal)."""
        self.post_event(jobid, "exception", {"type": type, "severity": severity, "note": note,
                                             "userid": self._tap.mgr.owner})

    def dependency_add(self, jobid: int, description: str) -> None:
        """Hold the job in DEPEND until ``dependency_remove(DESCRIPTION)``.

        EEXIST if DESCRIPTION was added to the job before (even if removed
        since): adding again after a restart or a reload is harmless.
        """
        tap = self._tap
        pending = tap.admitting.get(jobid)
        if pending is not None:
            if description in pending:
                raise FluxError(errno.EEXIST, f"dependency {description!r} exists")
            pending.append(description)
            return
        job = tap.job(jobid)
        rec = job.rec
        if description in rec.dependencies or description in (rec.dependencies_removed or ()) \
                or description in tap.posted_deps.get(jobid, ()):
            raise FluxError(errno.EEXIST, f"dependency {description!r} exists")
        if job.tstate != _D:
            raise FluxError(errno.EINVAL, "dependencies can only be added in DEPEND")
        tap.mgr.post(job, "dependency-add", {"description": description})
        tap.posted_deps.setdefault(jobid, set()).add(description)

    def dependency_remove(self, jobid: int, description: str) -> None:
        """Satisfy the job's dependency DESCRIPTION (ENOENT if it has none such)."""
        tap = self._tap
        job = tap.job(jobid)
        added = description in job.rec.dependencies or description in tap.posted_deps.get(
            jobid, ())
        if not added or description in tap.removed_deps.get(jobid, ()):
            raise FluxError(errno.ENOENT, f"job has no dependency {description!r}")
        tap.mgr.post(job, "dependency-remove", {"description": description})
        tap.removed_deps.setdefault(jobid, set()).add(description)
        tap.mgr.progress(job)

    def reprioritize_job(self, jobid: int, priority: int) -> None:
        """Give a pending job PRIORITY (a job waiting in PRIORITY goes on to SCHED)."""
        self._tap.set_priority(self._tap.job(jobid), priority)

    def reprioritize_all(self) -> None:
        """Ask ``job.priority.get`` again for every pending job."""
        self._tap.reprioritize_all()

    def job_subscribe(self, jobid: int) -> None:
        """Have ``job.event.*`` callbacks for every event of the job from now on."""
        self._tap.job(jobid)
        self._tap.subs.setdefault(jobid, []).append(self)

    def job_unsubscribe(self, jobid: int) -> None:
        subs = self._tap.subs.get(jobid)
        if subs and self in subs:
            subs.remove(self)
            if not subs:
                del self._tap.subs[jobid]

    def get_job(self, jobid: int) -> JobtapArgs:
        """What a callback would be told about active job JOBID."""
        return self._tap.args(self._tap.job(jobid))


class Jobtap:
    """The loaded plugins of one job manager, and the calls into them."""

    def __init__(self, mgr: Manager) -> None:
        self.mgr = mgr
        self.plugins: list[Plugin] = []
        self.builtins: list[str] = list(BUILTINS)
        self.subs: dict[int, list[Plugin]] = {}
        # dependency adds of jobs being admitted: posted once their ``validate`` is
        self.admitting: dict[int, list[str]] = {}
        self.posted_deps: dict[int, set[str]] = {}
        self.removed_deps: dict[int, set[str]] = {}
        self._depend_called: set[int] = set()
        self._calls: dict[str, list[tuple[Plugin, Callback]]] = {}
        self._schemes: SchemeClaims | None = None
        # jobs whose job.state.priority said "unavailable": not asked again until
        # something changes (reprioritize_job, an urgency, a plugin loaded or removed)
        self.priority_waiting: set[int] = set()
        # jobid -> (the jobspec, its redacted copy) for callbacks
        self._redacted: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._serial = 0
        self.active = False          # any plugin loaded, or a builtin removed
        self.custom_priority = False  # priority is not simply priority_for(urgency)

    # -- the registry ----------------------------------------------------------------------
    def names(self) -> list[str]:
        return self.builtins + [p.name for p in self.plugins]

    def changed(self) -> None:
        self._calls.clear()
        self._schemes = None
        if not self.plugins:
            # nothing is left to call or to remove a dependency: no per-job state either
            for table in (self.subs, self.posted_deps, self.removed_deps, self.admitting):
                table.clear()
            self._depend_called.clear()
        self.active = bool(self.plugins) or len(self.builtins) != len(BUILTINS)
        self.custom_priority = ".priority-default" not in self.builtins or bool(
            self.calls("job.state.priority") or self.calls("job.priority.get"))

    def calls(self, topic: str) -> list[tuple[Plugin, Callback]]:
        found = self._calls.get(topic)
        if found is None:
            import fnmatch      # here: the broker does not pay for it until plugins load

            found = [(p, fn) for p in self.plugins for glob, fn in p.handlers
                     if fnmatch.fnmatchcase(topic, glob)]
            self._calls[topic] = found
        return found

    def plugin_schemes(self) -> "SchemeClaims":
        """Dependency schemes plugins judge: ``job.dependency.SCHEME`` handlers, and
        what a glob handler (``job.dependency.*``) matches that no builtin judges."""
        claims = self._schemes
        if claims is None:
            exact, globs = set(), []
            for p in self.plugins:
                for glob, _fn in p.handlers:
                    if any(c in glob for c in "*?["):
                        globs.append(glob)      # job.dependency.*, job.*, *: tested per scheme
                    elif glob.startswith("job.dependency."):
                        exact.add(glob[len("job.dependency."):])
            claims = self._schemes = SchemeClaims(frozenset(exact), tuple(globs),
                                                  self.builtin_schemes())
        return claims

    def builtin_schemes(self) -> frozenset[str]:
        out: set[str] = set()
        if ".dependency-after" in self.builtins:
            out.update(("after", "afterany", "afterok", "afternotok", "afterstart"))
        if ".begin-time" in self.builtins:
            out.add("begin-time")
        return frozenset(out)

    def load(self, spec: str, conf: dict[str, Any] | None = None,
             searchpath: list[str] | None = None) -> str:
        """Load plugin SPEC (a builtin's name, a ``.py`` path, or a module name)."""
        if spec in BUILTINS:
            if spec in self.builtins:
                raise FluxError(errno.EEXIST, f"{spec}: plugin already loaded")
            self.builtins.append(spec)
            self.changed()
            self._wake_pending()
            return spec
        builtin = BUILT_IN_C_PLUGINS.get(os.path.basename(spec))
        if builtin is not None:
            self.mgr.log.info(f"jobtap: {spec}: nothing to load ({builtin})")
            return os.path.basename(spec)
        name = plugin_name(spec)
        if name in self.names():
            raise FluxError(errno.EEXIST, f"{name}: plugin already loaded")
        module, path = self._import(spec, searchpath or [])
        init = getattr(module, "flux_plugin_init", None)
        if not callable(init):
            raise FluxError(errno.EINVAL, f"{spec}: flux_plugin_init not found")
        plugin = Plugin(name, path, dict(conf or {}), self)
        try:
            rc = init(plugin)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's failure is its load's error
            raise FluxError(errno.EINVAL, f"{name}: flux_plugin_init failed: "
                                          f"{type(exc).__name__}: {exc}") from None
        if isinstance(rc, int) and rc < 0:
            raise FluxError(errno.EINVAL, f"{name}: flux_plugin_init failed")
        self.plugins.append(plugin)
        self.changed()
        import fnmatch

        news = [fn for glob, fn in plugin.handlers if fnmatch.fnmatchcase("job.new", glob)]
        if news:
            for job in sorted(self.mgr.jobs.values(), key=lambda j: j.rec.id):
                for fn in news:
                    self._call(plugin, fn, "job.new", self.args(job))
        self._wake_pending()
        self.mgr.log.info("jobtap: plugin loaded", plugin=name, path=path)
        return name

    def remove(self, pattern: str) -> list[str]:
        """Remove the plugins PATTERN matches (ENOENT if none, unless it is ``all``)."""
        gone = select_removals(self.names(), pattern)
        if not gone and pattern != "all":
            raise FluxError(errno.ENOENT, f"{pattern}: no such plugin found")
        for name in gone:
            if name in self.builtins:
                self.builtins.remove(name)
        dropped = [p for p in self.plugins if p.name in gone]
        self.plugins = [p for p in self.plugins if p.name not in gone]
        for plugin in dropped:
            for topic in plugin.services:
                self.mgr.ctx.remove_handler(topic)
        for jobid in list(self.subs):
            self.subs[jobid] = [p for p in self.subs[jobid] if p not in dropped]
            if not self.subs[jobid]:
                del self.subs[jobid]
        self.changed()
        self._wake_pending()
        if gone:
            self.mgr.log.info("jobtap: plugins removed", plugins=gone)
        return gone

    def query(self, name: str) -> dict[str, Any]:
        """What ``flux jobtap query NAME`` prints: the name, the path (``builtin``), and
        whatever the plugin's ``plugin.query`` callbacks put in ``args.out``."""
        if name in self.builtins:
            return {"name": name, "path": "builtin"}
        plugin = next((p for p in self.plugins if p.name == name), None)
        if plugin is None:
            raise FluxError(errno.ENOENT, f"{name}: plugin not found")
        import fnmatch

        out: dict[str, Any] = {}
        for glob, fn in plugin.handlers:
            if fnmatch.fnmatchcase("plugin.query", glob):
                args = JobtapArgs(0, -1, 0, 0, -1, 0.0, {})
                if self._call(plugin, fn, "plugin.query", args) >= 0:
                    out.update(args.out)
        return {**out, "name": plugin.name, "path": plugin.path}

    def apply_directives(self, directives: list[Directive], searchpath: list[str]) -> None:
        for i, d in enumerate(directives):
            try:
                if d.remove is not None:
                    self.remove(d.remove)
                if d.load is not None:
                    self.load(d.load, dict(d.conf), searchpath)
            except FluxError as exc:
                raise FluxError(exc.errno or errno.EINVAL,
                                f"plugins[{i}]: {exc.strerror or exc}") from None

    def _import(self, spec: str, searchpath: list[str]) -> tuple[ModuleType, str]:
        if spec.endswith(".so"):
            raise FluxError(errno.EINVAL, f"{spec}: C plugins (.so) cannot be loaded here: "
                                          "this job manager loads Python plugins (.py)")
        import importlib.util

        self._serial += 1
        modname = f"_flux_jobtap_{self._serial}"
        if spec.endswith(".py") or "/" in spec:
            path = spec
            if not os.path.isabs(spec):
                found = [os.path.join(d, spec) for d in searchpath
                         if os.path.isfile(os.path.join(d, spec))]
                path = found[0] if found else spec
            if not os.path.isfile(path):
                raise FluxError(errno.ENOENT, f"{spec}: No such file or directory")
            mspec = importlib.util.spec_from_file_location(modname, path)
        else:
            try:
                mspec = importlib.util.find_spec(spec)
            except (ImportError, ValueError) as exc:
                raise FluxError(errno.ENOENT, f"{spec}: {exc}") from None
            if mspec is None:
                raise FluxError(errno.ENOENT, f"{spec}: No such file or directory "
                                              "(no such module)")
            path = mspec.origin or spec
        if mspec is None or mspec.loader is None:
            raise FluxError(errno.EINVAL, f"{spec}: not a Python module")
        module = importlib.util.module_from_spec(mspec)
        try:
            mspec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin that does not load is its error
            raise FluxError(errno.EINVAL, f"{spec}: {type(exc).__name__}: {exc}") from None
        return module, path

    # -- calls -----------------------------------------------------------------------------
    def job(self, jobid: int) -> ActiveJob:
        job = self.mgr.jobs.get(jobid)
        if job is None:
            raise FluxError(errno.ENOENT, f"job {jobid} is not active")
        return job

    def args(self, job: ActiveJob, prev_state: int | None = None, state: int | None = None,
             entry: dict[str, Any] | None = None) -> JobtapArgs:
        rec = job.rec
        return JobtapArgs(rec.id, rec.userid, int(job.tstate if state is None else state),
                          job.t_urgency, rec.priority, rec.t_submit, self.jobspec_of(job),
                          prev_state=prev_state, entry=entry)

    def jobspec_of(self, job: ActiveJob) -> dict[str, Any]:
        """JOB's jobspec as callbacks get it: without the environment (made once per
        job, again after a jobspec-update)."""
        cached = self._redacted.get(job.rec.id)
        if cached is not None and cached[0] is job.jobspec:
            return cached[1]
        view = redacted(job.jobspec)
        self._redacted[job.rec.id] = (job.jobspec, view)
        return view

    def _call(self, plugin: Plugin, fn: Callback, topic: str, args: JobtapArgs) -> int:
        try:
            rc = fn(plugin, topic, args)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's bug must not stop the job manager
            plugin.log.error("jobtap: callback failed", topic=topic, id=args.id,
                             error=f"{type(exc).__name__}: {exc}",
                             where=traceback.format_exc(limit=-1).strip().splitlines()[-3:])
            if args.error is None:
                args.error = f"{plugin.name}: {topic}: {type(exc).__name__}: {exc}"
            return -1
        notes = args.out.pop("annotations", None)
        if notes is not None:
            self._annotate(plugin, args.id, notes)
        return rc if isinstance(rc, int) else 0

    def _annotate(self, plugin: Plugin, jobid: int, notes: Any) -> None:
        """A pending job's annotations from a callback (RFC 27 merge, null deletes)."""
        from jobmgr.job import merge_annotations

        job = self.mgr.jobs.get(jobid)
        if job is None or job.tstate not in (JobState.NEW, _D, _P, _S):
            return
        if not isinstance(notes, dict):
            plugin.log.error("jobtap: annotations must be an object", id=jobid)
            return
        job.annotations = merge_annotations(job.annotations, notes)
        if job.events:
            self.mgr.journal.annotate(jobid, job.annotations)
            return

        # its submit is not committed yet: readers of the journal learn of the job
        # with that commit, so the annotations follow it
        def committed(errnum: int, _errstr: str | None) -> None:
            if not errnum and self.mgr.jobs.get(jobid) is job:
                self.mgr.journal.annotate(jobid, job.annotations)

        self.mgr.poster.after_commit(committed)

    def _refusals(self, topic: str, args: JobtapArgs) -> None:
        for plugin, fn in self.calls(topic):
            if self._call(plugin, fn, topic, args) < 0:
                raise FluxError(errno.EINVAL, args.error or f"rejected by job-manager plugin "
                                                            f"{plugin.name}")

    def validate(self, entry: dict[str, Any], deps: list[Any]) -> None:
        """``job.validate`` then ``job.dependency.SCHEME`` for a job being admitted
        (EINVAL with the plugin's reason if refused)."""
        args = JobtapArgs(entry["id"], entry["userid"], int(JobState.NEW), entry["urgency"], -1,
                          entry["t_submit"], redacted(entry["jobspec"]))
        self._refusals("job.validate", args)
        schemes = self.plugin_schemes()
        mine = [d for d in deps if d.scheme in schemes]
        if not mine:
            return
        self.admitting[entry["id"]] = []
        try:
            for dep in mine:
                args.dependency = {"scheme": dep.scheme, "value": dep.value}
                self._refusals("job.dependency." + dep.scheme, args)
        except FluxError:
            del self.admitting[entry["id"]]
            raise

    def validated(self, job: ActiveJob) -> None:
        """``validate`` is posted: the plugins' dependency adds of admission go after it."""
        adds = self.admitting.pop(job.rec.id, None)
        for desc in adds or ():
            self.mgr.post(job, "dependency-add", {"description": desc})
            self.posted_deps.setdefault(job.rec.id, set()).add(desc)

    def new(self, job: ActiveJob) -> None:
        """``job.new``: JOB was just admitted, or replayed at a restart."""
        for plugin, fn in self.calls("job.new"):
            self._call(plugin, fn, "job.new", self.args(job))

    def depend(self, job: ActiveJob) -> None:
        """``job.state.depend``, once per job, before ``depend`` may be posted."""
        jobid = job.rec.id
        if jobid in self._depend_called:
            return
        self._depend_called.add(jobid)
        for plugin, fn in self.calls("job.state.depend"):
            self._call(plugin, fn, "job.state.depend",
                       self.args(job, prev_state=int(JobState.NEW)))

    def priority(self, job: ActiveJob, topic: str = "job.state.priority") -> int | None:
        """The priority the plugins give JOB (None: unavailable). ``job.state.priority``
        is called once per entry into PRIORITY: a job its plugins left waiting is not
        asked again until something changes (``stale``)."""
        urgency = job.t_urgency
        if urgency in (0, 31):
            return priority_for(urgency)
        jobid = job.rec.id
        if topic == "job.state.priority" and jobid in self.priority_waiting:
            return None
        args = self.args(job, prev_state=int(JobState.DEPEND))
        if ".priority-default" in self.builtins:
            args.out["priority"] = urgency
        for plugin, fn in self.calls(topic):
            self._call(plugin, fn, topic, args)
        value = args.out.get("priority")
        if value is None or value == PRIORITY_UNAVAILABLE:
            if topic == "job.state.priority":
                self.priority_waiting.add(jobid)
            return None
        self.priority_waiting.discard(jobid)
        if isinstance(value, bool) or not isinstance(value, int) \
                or not PRIORITY_MIN <= value <= PRIORITY_MAX:
            # ignored: the job gets the priority its urgency gives, rather than
            # waiting in PRIORITY for good
            self.mgr.log.error("jobtap: priority out of range ignored", topic=topic,
                               id=jobid, priority=repr(value))
            return priority_for(urgency)
        return priority_for(urgency, value)

    def stale(self, jobid: int) -> None:
        """Something JOBID's priority depends on changed: ask its plugins again."""
        self.priority_waiting.discard(jobid)

    def set_priority(self, job: ActiveJob, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) \
                or not PRIORITY_MIN <= value <= PRIORITY_MAX:
            raise FluxError(errno.EINVAL, f"priority {value!r} out of range "
                                          f"({PRIORITY_MIN}-{PRIORITY_MAX})")
        if job.tstate not in (_P, _S):
            raise FluxError(errno.EINVAL, "only a pending job can be reprioritized")
        self.priority_waiting.discard(job.rec.id)
        prio = priority_for(job.t_urgency, value)
        if job.tstate == _S and prio == job.rec.priority:
            return
        self.mgr.post(job, "priority", {"priority": prio})
        self.mgr.progress(job)

    def reprioritize_all(self) -> None:
        for job in list(self.mgr.jobs.values()):
            if job.tstate not in (_P, _S):
                continue
            prio = self.priority(job, "job.priority.get")
            if prio is None:
                if job.tstate == _S:
                    self.mgr.log.error("jobtap: priority unavailable in SCHED ignored",
                                       id=job.rec.id)
                continue
            if job.tstate == _P or prio != job.rec.priority:
                self.mgr.post(job, "priority", {"priority": prio})
                self.mgr.progress(job)

    def _wake_pending(self) -> None:
        """After a load or removal, jobs waiting in PRIORITY may have a priority now."""
        self.priority_waiting.clear()
        for job in list(self.mgr.jobs.values()):
            if job.tstate == _P:
                self.mgr.progress(job)

    def applied(self, job: ActiveJob, events: list[dict[str, Any]], before: JobState) -> None:
        """Committed EVENTS moved JOB from BEFORE: ``job.state.*`` and ``job.event.*``."""
        if job.rec.state != before:
            prev = before
            for state in states_entered(before, events):
                if state not in _TENTATIVE:
                    topic = "job.state." + state.name.lower()
                    for plugin, fn in self.calls(topic):
                        self._call(plugin, fn, topic, self.args(job, prev_state=int(prev),
                                                                state=int(state)))
                prev = state
        subs = self.subs.get(job.rec.id)
        if subs:
            for event in events:
                topic = "job.event." + str(event.get("name"))
                for plugin, fn in self.calls(topic):
                    if plugin in subs:
                        self._call(plugin, fn, topic, self.args(job, entry=event))
        if job.rec.state == JobState.INACTIVE:
            self.forget(job.rec.id)

    def forget(self, jobid: int) -> None:
        self.subs.pop(jobid, None)
        self.priority_waiting.discard(jobid)
        self._redacted.pop(jobid, None)
        self._depend_called.discard(jobid)
        self.posted_deps.pop(jobid, None)
        self.removed_deps.pop(jobid, None)
        self.admitting.pop(jobid, None)
