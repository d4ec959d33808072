"""flux.job: job ids, jobspec, submission, events, listing and results.

Names are resolved lazily from the submodules below, so ``from flux.job
import JobID`` does not import the jobspec or RPC machinery.  Module paths
follow Flux's Python bindings (``flux.job.JobID``, ``flux.job.Jobspec``,
``flux.job.event``, ``flux.job.info``, ``flux.job.list``, ...).
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# Submodules named like the classes they define (as in Flux's bindings) are
# imported eagerly: once anything imports flux.job.JobID as a module, Python
# binds that module to the package attribute, and a lazy lookup would then
# hand out the module instead of the class.
# (``X as X``: re-exported names)
from flux.job.JobID import JobID as JobID, id_encode as id_encode, id_parse as id_parse
from flux.job.Jobspec import (Jobspec as Jobspec, JobspecV1 as JobspecV1,
                              validate_jobspec as validate_jobspec)
# Functions named like their submodule, bound eagerly for the same reason.
from flux.job.kill import kill as kill
from flux.job.submit import submit as submit
from flux.job.timeleft import timeleft as timeleft
from flux.job.wait import wait as wait

# public name -> submodule of flux.job that defines it
_EXPORTS = {
    # events
    "EventLogEvent": "event", "JobException": "event", "JobEventWatchFuture": "event",
    "event_watch": "event", "event_watch_async": "event", "event_wait": "event",
    "MAIN_EVENTS": "event",
    # submission
    "submit_async": "submit", "SubmitFuture": "submit", "submit_get_id": "submit",
    # control
    "cancel": "kill", "cancel_async": "kill", "kill_async": "kill",
    "raise_exception": "kill", "raise_async": "kill",
    "job_raise": "kill", "job_raise_async": "kill",
    # results and waits
    "result": "wait", "result_async": "wait", "JobResultFuture": "wait",
    "wait_async": "wait", "JobWaitFuture": "wait", "JobWaitResult": "wait",
    "wait_get_status": "wait",
    # defined by flux.job._utils (batch config, signal names)
    "BatchConfig": "_utils", "decode_signal": "_utils",
    # listing
    "JobList": "list", "job_list": "list", "job_list_id": "list",
    "job_list_inactive": "list", "get_job": "list",
    "JobInfo": "info", "JobInfoFormat": "info", "job_fields_to_attrs": "info",
    "JobStats": "stats",
    "job_kvs": "kvs", "job_kvs_guest": "kvs",
    "job_info_lookup": "kvslookup", "job_kvs_lookup": "kvslookup",
    "JobInfoLookupRPC": "kvslookup", "JobKVSLookup": "kvslookup",
    "job_info_update_lookup": "kvslookup", "JobInfoUpdateLookupRPC": "kvslookup",
    "job_info_update_watch": "kvslookup", "JobInfoUpdateWatchRPC": "kvslookup",
    # concurrent.futures executor
    "FluxExecutor": "executor", "FluxExecutorFuture": "executor",
    # job output (RFC 24)
    "JobOutput": "output", "job_output": "output",
    "output_watch": "output", "output_watch_async": "output",
    "output_watch_lines": "output", "output_watch_lines_async": "output",
    "output_event_watch": "output", "output_event_watch_async": "output",
    "JobOutputWatch": "output", "JobOutputWatchLines": "output", "JobOutputEventWatch": "output",
    # the job manager's journal of job events
    "JournalConsumer": "journal", "JournalEvent": "journal",
    # following jobs for flux submit --watch
    "JobWatcher": "watcher", "JobStatus": "watcher",
}

__all__ = sorted([*(name for name, mod in _EXPORTS.items()
                    if mod != "_utils" or importlib.util.find_spec("flux.job._utils")),
                  "JobID", "id_encode", "id_parse", "Jobspec", "JobspecV1", "validate_jobspec",
                  "kill", "submit", "timeleft", "wait"])


# submodules a script may use as attributes after ``import flux.job`` (as in
# Flux's bindings, where the package imports them): ``flux.job.output.job_output``
_SUBMODULES = frozenset(("event", "info", "list", "stats", "kvs", "kvslookup", "executor",
                         "output", "journal", "watcher",
                         "dependency", "summary", "taskmap"))


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"flux.job.{name}")
    modname = _EXPORTS.get(name)
    if modname is None:
        raise AttributeError(f"module 'flux.job' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flux.job.{modname}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
