"""Jobspec facts for the job list and scheduler."""
from __future__ import annotations

import copy

import pytest

from flux.job.summary import job_name, summarize


def spec(resources, count=None, system=None, command=("/usr/bin/sleep", "1")):
    return {"version": 1, "resources": resources,
            "tasks": [{"command": list(command), "slot": "task",
                       "count": count or {"per_slot": 1}}],
            "attributes": {"system": system if system is not None else {"duration": 0}}}


def slot(n, cores=1, gpus=0):
    inner = [{"type": "core", "count": cores}]
    if gpus:
        inner.append({"type": "gpu", "count": gpus})
    return {"type": "slot", "count": n, "label": "task", "with": inner}


def test_slot_core():
    s = summarize(spec([slot(4, 2)]))
    assert (s.ntasks, s.nslots, s.cores_per_slot, s.gpus_per_slot) == (4, 4, 2, 0)
    assert (s.nnodes, s.slots_per_node, s.exclusive) == (0, 0, False)
    assert (s.ncores, s.ngpus, s.duration, s.name) == (8, 0, 0.0, "sleep")


def test_node_slot_core_gpu_exclusive():
    res = [{"type": "node", "count": 2, "exclusive": True, "with": [slot(3, 2, 1)]}]
    s = summarize(spec(res, {"total": 5}, {"duration": 60.5, "queue": "batch", "cwd": "/tmp",
                                            "project": "p1", "bank": "b1",
                                            "job": {"name": "myjob"},
                                            "constraints": {"properties": ["ssd"]},
                                            "dependencies": [{"scheme": "afterok",
                                                              "value": "1"}]}))
    assert (s.nnodes, s.slots_per_node, s.nslots, s.exclusive) == (2, 3, 6, True)
    assert (s.ntasks, s.ncores, s.ngpus) == (5, 12, 6)
    assert (s.duration, s.queue, s.cwd, s.project, s.bank, s.name) == (
        60.5, "batch", "/tmp", "p1", "b1", "myjob")
    assert s.constraints == {"properties": ["ssd"]}
    assert s.dependencies == [{"scheme": "afterok", "value": "1"}]


def test_per_resource_and_ranged_counts():
    res = [{"type": "node", "count": {"min": 3, "max": 4},
            "with": [slot(1, 4)]}]
    s = summarize(spec(res, {"per_resource": {"type": "node", "count": 2}}))
    assert (s.nnodes, s.ntasks) == (3, 6)
    s = summarize(spec([slot("2-4", 1)], {"per_resource": {"type": "core", "count": 1}}))
    assert (s.nslots, s.ntasks) == (2, 2)


def test_matches_jobspec_factory():
    from flux.job.Jobspec import JobspecV1

    js = JobspecV1.from_command(["/bin/hostname"], num_tasks=4, cores_per_task=2,
                                gpus_per_task=1, num_nodes=2)
    s = summarize(js.jobspec if hasattr(js, "jobspec") else js)
    assert (s.ntasks, s.nnodes, s.nslots, s.ncores, s.ngpus, s.name) == (
        4, 2, 4, 8, 4, "hostname")


def test_job_name_rules():
    assert job_name(spec([slot(1)], command=["./a.out"])) == "a.out"
    assert job_name(spec([slot(1)], system={"job": {"name": "x y"}})) == "x y"
    assert job_name({"tasks": []}) == ""


@pytest.mark.parametrize("mutate,message", [
    (lambda j: j.update(resources=[]), "resources: must be a list of exactly one"),
    (lambda j: j["resources"][0].update(type="core"), "resources\\[0\\].type: must be node or"),
    (lambda j: j["resources"][0].update(count=0), "resources\\[0\\].count: must be >= 1"),
    (lambda j: j["resources"][0].update(count="x"), "resources\\[0\\].count: invalid count"),
    (lambda j: j["resources"][0]["with"][0].update(count={"min": 0}),
     "resources\\[0\\].with\\[0\\].count.min"),
    (lambda j: j["resources"][0]["with"].append({"type": "node"}),
     "resources\\[0\\].with\\[1\\].type: unexpected resource type 'node'"),
    (lambda j: j["resources"][0].update({"with": [{"type": "gpu", "count": 1}]}),
     "resources\\[0\\].with: a slot must contain cores"),
    (lambda j: j["tasks"][0].update(count={"per_slot": 0}),
     "tasks\\[0\\].count.per_slot: must be an integer >= 1"),
    (lambda j: j["tasks"][0].update(count={}), "tasks\\[0\\].count: needs per_slot"),
    (lambda j: j["tasks"][0].update(count={"total": "3"}), "tasks\\[0\\].count.total"),
    (lambda j: j["tasks"][0].update(count={"per_resource": {"type": "slot", "count": 1}}),
     "per_resource.type: must be node or core"),
    (lambda j: j.update(tasks=[]), "tasks: must be a list with one task"),
    (lambda j: j["attributes"]["system"].update(duration=-1),
     "attributes.system.duration: must be a number >= 0"),
    (lambda j: j["attributes"]["system"].update(queue=5), "attributes.system.queue: must be a"),
    (lambda j: j["attributes"]["system"].update(constraints=[]),
     "attributes.system.constraints: must be an object"),
    (lambda j: j["attributes"]["system"].update(dependencies={}),
     "attributes.system.dependencies: must be an array"),
    (lambda j: j["attributes"].update(system=[]), "attributes.system: must be an object"),
    (lambda j: j["tasks"][0].update(command=["ec\0ho", "x"]),
     "tasks\\[0\\].command\\[0\\]: contains a NUL character"),
    (lambda j: j["attributes"]["system"].update(environment={"A\0B": "x"}),
     "attributes.system.environment: 'A.*B' contains a NUL character"),
    (lambda j: j["attributes"]["system"].update(environment={"A": "x\0"}),
     "attributes.system.environment: 'A' contains a NUL character"),
    (lambda j: j["attributes"]["system"].update(environment=["A=1"]),
     "attributes.system.environment: must be an object"),
])
def test_bad_jobspec_names_the_path(mutate, message):
    js = copy.deepcopy(spec([slot(2)]))
    mutate(js)
    with pytest.raises(ValueError, match=message):
        summarize(js)


def test_node_must_hold_one_slot():
    js = spec([{"type": "node", "count": 1, "with": [slot(1), slot(1)]}])
    with pytest.raises(ValueError, match="a node must contain exactly one slot"):
        summarize(js)
