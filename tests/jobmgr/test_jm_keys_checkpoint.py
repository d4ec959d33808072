"""Job keys and the job-manager checkpoint format."""
from __future__ import annotations

import pytest

from flux.job.JobID import JobID
from jobmgr.manager.active import eventlog_key, id_from_key, job_key
from jobmgr.manager.purge import InactiveIndex
from jobmgr.manager.restart import (
    Checkpoint,
    decode_checkpoint,
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
