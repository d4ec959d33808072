"""Where a job's tasks run: ``PMI_process_mapping`` (RFC 13) and the RFC 34 task map.

Both describe a list *nodeids* in which entry r is the node (shell rank)
running task rank r.  They compress it into map blocks: a block
``(nodeid, nnodes, ppn)`` gives ``ppn`` consecutive ranks to each of the
nodes ``nodeid .. nodeid+nnodes-1`` in turn; blocks apply in order.

- ``PMI_process_mapping``: ``(vector,(0,2,2),(2,2,4))``; a cyclic
  distribution repeats its block: ``(vector,(0,2,1),(0,2,1))``.
- RFC 34: JSON ``{"version":1,"map":[[nodeid,nnodes,ppn,repeat],...]}``,
  where ``repeat`` folds identical consecutive blocks; its "raw" form is
  each node's task idset, ``;``-separated (``0-1;2-3``).

Pure functions; the encoders make the greedy (shortest for block and
cyclic distributions) block list, the decoders accept any valid one.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Sequence

import orjson

Block = tuple[int, int, int]


def block_nodeids(counts: Sequence[int]) -> list[int]:
    """Block distribution: node i runs COUNTS[i] consecutive ranks."""
    out: list[int] = []
    for node, count in enumerate(counts):
        if count < 0:
            raise ValueError(f"node {node} has a negative task count {count}")
        out.extend([node] * count)
    return out


def blocks(nodeids: Sequence[int]) -> list[Block]:
    """The (nodeid, nnodes, ppn) blocks that expand to NODEIDS."""
    out: list[list[int]] = []
    i, n = 0, len(nodeids)
    while i < n:
        node = nodeids[i]
        if node < 0:
            raise ValueError(f"rank {i} has a negative node id {node}")
        j = i
        while j < n and nodeids[j] == node:
            j += 1
        run = j - i
        last = out[-1] if out else None
        # extend the previous block when this run continues it on the next node
        if last is not None and last[2] == run and last[0] + last[1] == node:
            last[1] += 1
        else:
            out.append([node, 1, run])
        i = j
    return [(a, b, c) for a, b, c in out]


def expand(block_list: Sequence[Block]) -> list[int]:
    """The node id of each rank, from BLOCK_LIST."""
    out: list[int] = []
    for nodeid, nnodes, ppn in block_list:
        for node in range(nodeid, nodeid + nnodes):
            out.extend([node] * ppn)
    return out


def encode_process_mapping(nodeids: Sequence[int], limit: int | None = None) -> str:
    """The PMI_process_mapping value for NODEIDS; "" if longer than LIMIT (unknown mapping)."""
    if not nodeids:
        raise ValueError("a process mapping needs at least one task")
    text = "(vector," + ",".join(f"({a},{b},{c})" for a, b, c in blocks(nodeids)) + ")"
    if limit is not None and len(text) > limit:
        return ""
    return text


def process_mapping(counts: Sequence[int], limit: int | None = None) -> str:
    """PMI_process_mapping for a block distribution of COUNTS[i] tasks on node i."""
    return encode_process_mapping(block_nodeids(counts), limit)


_VECTOR = re.compile(r"\(vector((?:,\(\d+,\d+,\d+\))+)\)")
_BLOCK = re.compile(r"\((\d+),(\d+),(\d+)\)")


def decode_process_mapping(text: str) -> list[int]:
    """The node id of each rank from a PMI_process_mapping value (spaces ignored)."""
    compact = "".join(text.split())
    m = _VECTOR.fullmatch(compact)
    if m is None:
        raise ValueError(f"not a PMI_process_mapping vector: {text!r} "
                         "(expected (vector,(nodeid,nnodes,ppn),...))")
    block_list = [(int(a), int(b), int(c)) for a, b, c in _BLOCK.findall(m.group(1))]
    return expand(block_list)


@functools.lru_cache(maxsize=256)
def _counts_taskmap(counts: tuple[int, ...]) -> str:
    return encode_taskmap(block_nodeids(counts))


def taskmap_of_counts(counts: Sequence[int]) -> dict[str, Any]:
    """The RFC 34 task map (version and map) of COUNTS[i] consecutive ranks on node i.

    Remembered by shape: a shell server's jobs mostly have the same few.
    A new dict each call (callers may keep it).
    """
    out: dict[str, Any] = orjson.loads(_counts_taskmap(tuple(counts)))
    return out


def encode_taskmap(nodeids: Sequence[int]) -> str:
    """The RFC 34 task map of NODEIDS as compact JSON (with version and map)."""
    if not nodeids:
        raise ValueError("a task map needs at least one task")
    out: list[list[int]] = []
    for block in blocks(nodeids):
        if out and tuple(out[-1][:3]) == block:
            out[-1][3] += 1
        else:
            out.append([*block, 1])
    return orjson.dumps({"version": 1, "map": out}).decode()


def decode_taskmap(text: str) -> list[int]:
    """The node id of each rank from an RFC 34 task map (wrapped or bare array)."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"task map is not JSON: {exc}") from None
    if isinstance(obj, dict):
        if obj.get("version") != 1:
            raise ValueError(f"task map version must be 1, got {obj.get('version')!r}")
        obj = obj.get("map")
    if not isinstance(obj, list) or not obj:
        raise ValueError("task map must be a non-empty array of blocks")
    block_list: list[Block] = []
    for block in obj:
        if (not isinstance(block, list) or len(block) != 4
                or not all(type(v) is int and v >= 0 for v in block)):
            raise ValueError(f"task map block must be 4 non-negative integers, got {block!r}")
        nodeid, nnodes, ppn, repeat = block
        block_list.extend([(nodeid, nnodes, ppn)] * repeat)
    return expand(block_list)


def decode_raw_taskmap(text: str) -> list[int]:
    """The node id of each task from a raw task map (``;``-separated idsets, one per node)."""
    from flux.idset import IDset

    owner: dict[int, int] = {}
    for node, part in enumerate(text.split(";")):
        try:
            tasks = IDset(part.strip())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid raw task map '{text}': {exc}") from None
        for task in tasks:
            if task in owner:
                raise ValueError(f"invalid raw task map '{text}': task {task} is on two nodes")
            owner[task] = node
    if not owner or sorted(owner) != list(range(len(owner))):
        raise ValueError(f"invalid raw task map '{text}': task ids must be 0..N-1")
    return [owner[task] for task in range(len(owner))]


def tasks_by_node(nodeids: Sequence[int]) -> list[list[int]]:
    """The task ranks on each node, node 0 first."""
    nodes: list[list[int]] = [[] for _ in range(max(nodeids) + 1)] if nodeids else []
    for task, node in enumerate(nodeids):
        nodes[node].append(task)
    return nodes


def map_tasks(counts: Sequence[int], taskmap: Any = None,
              hostnames: Sequence[str] = ()) -> list[int] | None:
    """The node of each task rank under the ``taskmap`` shell option; None: block.

    Node i runs COUNTS[i] tasks whatever the scheme; the scheme says which
    ranks (``{"scheme", "value"}``, from ``--taskmap=SCHEME[:VALUE]``):
    ``block`` consecutive ranks (the default); ``cyclic[:N]`` ranks dealt to
    the nodes in turn, N at a time; ``manual:MAP`` an RFC 34 task map;
    ``hostfile:FILE`` rank i on the host named on line i of FILE (HOSTNAMES
    gives each node's host).  ValueError names what is wrong.
    """
    if taskmap is None:
        return None
    if not isinstance(taskmap, dict) or not isinstance(taskmap.get("scheme"), str):
        raise ValueError("taskmap: must be an object with a 'scheme' string")  # noqa: TRY004 - callers catch ValueError
    scheme, value = taskmap["scheme"], taskmap.get("value", "")
    total = sum(counts)
    if scheme == "block":
        return None
    if scheme == "cyclic":
        step = 1 if value in ("", None) else value
        if isinstance(step, str) and step.isdigit():
            step = int(step)
        if type(step) is not int or step < 1:
            raise ValueError(f"taskmap: cyclic: invalid value '{value}' (a count >= 1)")
        left, out = list(counts), []
        while len(out) < total:
            for node, room in enumerate(left):
                take = min(step, room)
                out.extend([node] * take)
                left[node] -= take
        return out
    if scheme == "manual":
        try:
            nodeids = decode_taskmap(value if isinstance(value, str) else orjson.dumps(value))
        except ValueError as exc:
            raise ValueError(f"taskmap: manual: {exc}") from None
    elif scheme == "hostfile":
        try:
            with open(str(value), encoding="utf-8") as fh:
                names = [line.strip() for line in fh if line.strip()]
        except OSError as exc:
            raise ValueError(f"taskmap: hostfile: {value}: {exc.strerror}") from None
        if len(names) != total:
            raise ValueError(f"taskmap: hostfile: {value} names {len(names)} host(s) for "
                             f"{total} task(s)")
        # several nodes may share a host name (more than one broker per host)
        left = list(counts)
        nodeids = []
        for name in names:
            node = next((i for i, host in enumerate(hostnames)
                         if host == name and left[i] > 0), None)
            if node is None:
                raise ValueError(f"taskmap: hostfile: host '{name}' is not one of the job's "
                                 f"with tasks left to place")
            left[node] -= 1
            nodeids.append(node)
    else:
        raise ValueError(f"taskmap: unknown scheme '{scheme}' (block, cyclic, manual or "
                         "hostfile)")
    placed = [0] * len(counts)
    for node in nodeids:
        if not 0 <= node < len(counts):
            raise ValueError(f"taskmap: {scheme}: node {node} is not one of the job's "
                             f"{len(counts)}")
        placed[node] += 1
    if placed != list(counts):
        raise ValueError(f"taskmap: {scheme}: the map places {placed} task(s) per node, the "
                         f"job runs {list(counts)}")
    return nodeids


def encode_raw_taskmap(nodeids: Sequence[int]) -> str:
    """RFC 34's raw task map: the idset of each node's tasks, ';'-separated."""
    from flux.idset import IDset

    return ";".join(IDset(tasks).encode() for tasks in tasks_by_node(nodeids))


__all__ = ["Block", "block_nodeids", "blocks", "expand", "encode_process_mapping",
           "process_mapping", "decode_process_mapping", "encode_taskmap", "decode_taskmap",
           "taskmap_of_counts", "decode_raw_taskmap", "encode_raw_taskmap", "tasks_by_node",
           "map_tasks"]
