"""``job-manager.memo``: small facts about a job from its user or its instance.

``{"id", "memo": {key: value, ...}, "volatile"?}``.  A memo is a ``memo``
event (RFC 21: each key replaces the last value, ``null`` removes it),
answered once durable; job-list shows it under ``annotations.user``.  A
volatile memo is only published to the journal, not written: a Flux
instance running as the job records its URI that way (it means nothing
once the job has ended).
"""
from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Any

import orjson

from flux.errors import FluxError
from flux.message import Message
from jobmgr.manager.lookup import active_job, job_id, payload_of

if TYPE_CHECKING:
    from jobmgr.manager.core import Manager

__all__ = ["memo", "MEMO_MAX"]

#: most bytes of one memo (encoded): a memo is a note, not a store
MEMO_MAX = 4096


def memo(mgr: "Manager", msg: Message) -> dict[str, Any] | None:
    payload = payload_of(msg)
    jobid = job_id(payload, msg.topic)
    content = payload.get("memo")
    if not isinstance(content, dict) or not content:
        raise FluxError(errno.EPROTO, f"{msg.topic}: 'memo' must be a non-empty object")
    if len(orjson.dumps(content)) > MEMO_MAX:
        raise FluxError(errno.EFBIG, f"memo is larger than {MEMO_MAX} bytes")
    job = active_job(mgr, msg, jobid, "add memos to")
    if payload.get("volatile"):
        entry = {"timestamp": time.time(), "name": "memo", "context": content}
        mgr.journal.publish([{"id": jobid, "events": [entry]}])
        return {}
    mgr.post(job, "memo", content)

    def done(errnum: int, errstr: str | None) -> None:
        if errnum:
            mgr.ctx.respond_error(msg, errnum, errstr)
        else:
            mgr.ctx.respond(msg, {})

    mgr.poster.after_commit(done)
    return None
