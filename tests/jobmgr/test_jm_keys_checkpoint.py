"""Job keys and the job-manager checkpoint format."""
from __future__ import annotations

import orjson
import pytest

from flux.job.JobID import JobID
from jobmgr.manager.active import eventlog_key, id_from_key, job_key
from jobmgr.manager.purge import InactiveIndex
from jobmgr.manager.restart import (
    Checkpoint,
    decode_active_section,
    decode_checkpoint,
    encode_active_jobs,
    encode_active_section,
    encode_checkpoint,
    lost_found_key,
)


@pytest.mark.parametrize("jobid", [0, 1, 0xDEADBEEF, 2**64 - 1, 6787342413402046])
def test_job_key_matches_jobid_kvs_form(jobid):
    assert job_key(jobid) == JobID(jobid).kvs
    assert eventlog_key(jobid) == JobID(jobid).kvs + ".eventlog"
    assert id_from_key(eventlog_key(jobid)) == jobid
    assert id_from_key(job_key(jobid)) == jobid


@pytest.mark.parametrize("key", ["job", "job.0000.0000", "resource.eventlog",
                                 "job.zzzz.0000.0000.0001", "job.00000.0000.0000.0001.R",
                                 "checkpoint.job-manager"])
def test_id_from_key_rejects_other_keys(key):
    assert id_from_key(key) is None


def test_lost_found_key_uses_ascii_f58():
    assert lost_found_key(6787342413402046) == "job-lost+found.job.fuzzybunny"


def test_checkpoint_roundtrip():
    index = InactiveIndex()
    index.add(5, 1.25)
    ckpt = Checkpoint(max_jobid=9, rootref="blake3-" + "0" * 64, job_dir={"ver": 1},
                      active=[7, 9], inactive=index, queues=[{"name": None}],
                      zombies=[[5, True, ""]])
    again = decode_checkpoint(encode_checkpoint(ckpt))
    assert (again.max_jobid, again.rootref, again.job_dir, again.active) == \
        (9, ckpt.rootref, {"ver": 1}, [7, 9])
    assert again.inactive.items() == [(5, 1.25)]
    assert again.queues == [{"name": None}] and again.zombies == [[5, True, ""]]
    assert again.active_section is False
    ckpt.active_section = True
    assert decode_checkpoint(encode_checkpoint(ckpt)).active_section is True
    # a checkpoint from before the section existed has none
    old = encode_checkpoint(ckpt)
    del old["active_section"]
    assert decode_checkpoint(old).active_section is False


@pytest.mark.parametrize("obj, message", [
    ([], "must be a JSON object"),
    ({"version": 2}, "version 2 is not supported"),
    ({"version": 1, "max_jobid": -1}, "max_jobid must be an integer >= 0"),
    ({"version": 1, "max_jobid": 1, "active": ["x"]}, "active must be an array of job ids"),
    ({"version": 1, "max_jobid": 1, "rootref": 5}, "rootref must be a blobref"),
    ({"version": 1, "max_jobid": 1, "inactive": "!!!"}, "checkpoint inactive"),
])
def test_bad_checkpoint_names_the_key(obj, message):
    with pytest.raises(ValueError, match=message):
        decode_checkpoint(obj)


def test_active_section_roundtrip():
    events = [{"timestamp": 1.5, "name": "submit", "context": {"urgency": 0}}]
    jobs = encode_active_jobs([(7, events, {"version": 1}, None),
                               (9, events, {"version": 1}, {"version": 1})])
    assert jobs is not None
    data = encode_active_section("blake3-" + "1" * 64, {"ver": 1, "type": "dirref"}, jobs)
    rootref, job_dir, got = decode_active_section(data)
    assert rootref == "blake3-" + "1" * 64 and job_dir == {"ver": 1, "type": "dirref"}
    assert got == {7: (events, {"version": 1}, None), 9: (events, {"version": 1}, {"version": 1})}


@pytest.mark.parametrize("data, message", [
    (b"not json", "active section is not JSON"),
    (b"[]", "not a version 1 object"),
    (b'{"version": 2}', "not a version 1 object"),
    (b'{"version": 1, "jobs": []}', "rootref or jobs missing"),
    (b'{"version": 1, "rootref": "x", "jobs": [[1, [], {}]]}', "bad job entry"),
    (b'{"version": 1, "rootref": "x", "jobs": [["1", [], {}, null]]}', "bad job entry"),
    (b'{"version": 1, "rootref": "x", "jobs": [[1, {}, {}, null]]}', "bad job entry"),
    (b'{"version": 1, "rootref": "x", "jobs": [[1, [], null, null]]}', "bad job entry"),
])
def test_bad_active_section_names_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        decode_active_section(data)


def test_active_jobs_past_the_limit_are_not_encoded():
    # the section goes in the checkpoint's commit: one too large would fail it
    events = [{"timestamp": 1.5, "name": "submit", "context": {"urgency": 0}}]
    jobs = [(i, events, {"version": 1}, None) for i in range(10)]
    data = encode_active_jobs(jobs)
    assert data is not None and orjson.loads(data)[9] == [9, events, {"version": 1}, None]
    assert encode_active_jobs(jobs, limit=len(data)) == data
    assert encode_active_jobs(jobs, limit=len(data) - 1) is None
