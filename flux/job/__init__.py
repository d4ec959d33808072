"""flux.job: job ids, jobspec, submission, events, listing and results.

Names are resolved lazily from the submodules below, so ``from flux.job
import JobID`` does not import the jobspec or RPC machinery.  Module paths
follow Flux's Python bindings (``flux.job.JobID``, ``flux.job.Jobspec``,
``flux.job.event``, ``flux.job.info``, ``flux.job.list``, ...).
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule of flux.job that defines it
_EXPORTS = {
    # RFC 19 ids
    "JobID": "JobID", "id_parse": "JobID", "id_encode": "JobID",
    # RFC 14/25 jobspec
    "Jobspec": "Jobspec", "JobspecV1": "Jobspec", "validate_jobspec": "Jobspec",
    # events
    "EventLogEvent": "event", "JobException": "event", "JobEventWatchFuture": "event",
    "event_watch": "event", "event_watch_async": "event", "event_wait": "event",
    # submission
    "submit": "submit", "submit_async": "submit", "SubmitFuture": "submit",
    # control
    "cancel": "kill", "cancel_async": "kill", "kill": "kill", "kill_async": "kill",
    "raise_exception": "kill", "raise_async": "kill",
    # results and waits
    "result": "wait", "result_async": "wait", "JobResultFuture": "wait",
    "wait": "wait", "wait_async": "wait", "JobWaitFuture": "wait", "JobWaitResult": "wait",
    # listing
    "JobList": "list", "job_list": "list", "job_list_id": "list",
    "job_list_inactive": "list", "get_job": "list",
    "JobInfo": "info", "JobInfoFormat": "info",
    "JobStats": "stats",
    "job_kvs": "kvs", "job_kvs_guest": "kvs",
    "FluxExecutor": "executor", "FluxExecutorFuture": "executor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    modname = _EXPORTS.get(name)
    if modname is None:
        raise AttributeError(f"module 'flux.job' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flux.job.{modname}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
