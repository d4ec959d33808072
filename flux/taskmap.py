"""flux.taskmap: RFC 34 task maps (which node runs each task of a job).

``TaskMap`` is the Python face of Flux's libtaskmap (taskmap(3)), built on
the encoders and decoders the shell and ``flux job taskmap`` use
(shell/pmi/mapping.py).  A map is decoded from RFC 34 JSON (wrapped
``{"version":1,"map":[...]}`` or the bare array), a PMI-1
``PMI_process_mapping`` vector or the raw form (``0-1;2-3``, each node's
task ids), or built from blocks with ``append()``.  An empty map (``[]``
or ``""``) is the *unknown* mapping.  Errors are ValueError, naming what
is wrong as libtaskmap does.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from flux.idset import IDset
from shell.pmi.mapping import (decode_process_mapping, decode_raw_taskmap, encode_process_mapping,
                               encode_raw_taskmap, encode_taskmap, expand, tasks_by_node)

__all__ = ["TaskMap"]

#: the forms ``TaskMap.encode()`` knows (None: the bare RFC 34 array)
FORMATS = ("wrapped", "raw", "pmi", "multiline", "hosts")


def _blocks_of_json(obj: Any) -> list[tuple[int, int, int]]:
    """The (nodeid, nnodes, ppn) blocks of a decoded RFC 34 map, repeats unrolled."""
    if isinstance(obj, dict):
        if "version" not in obj or "map" not in obj:
            missing = "version" if "version" not in obj else "map"
            raise ValueError(f"Object item not found: {missing}")
        if obj["version"] != 1:
            raise ValueError(f"expected version=1, got {obj['version']}")
        obj = obj["map"]
        if not isinstance(obj, list):
            raise ValueError("taskmap must be an array")
    elif not isinstance(obj, list):
        raise ValueError("taskmap must be an object or array")
    out: list[tuple[int, int, int]] = []
    for index, entry in enumerate(obj):
        if not isinstance(entry, list):
            raise ValueError(f"entry {index} in taskmap is not an array")
        if len(entry) != 4 or not all(type(v) is int for v in entry):
            raise ValueError(f"error in taskmap entry: {orjson.dumps(entry).decode()}: "
                             "expected [nodeid,nnodes,ppn,repeat] integers")
        nodeid, nnodes, ppn, repeat = entry
        if nodeid < 0 or nnodes <= 0 or ppn <= 0 or repeat <= 0:
            raise ValueError(f"invalid entry [{nodeid},{nnodes},{ppn},{repeat}]")
        out.extend([(nodeid, nnodes, ppn)] * repeat)
    return out


class TaskMap:
    """An RFC 34 task map.

    ``TaskMap(taskmap=None)``: TASKMAP is a string (see ``decode()``), a
    decoded RFC 34 object or array, another TaskMap, or None for the
    unknown (empty) map.
    """

    def __init__(self, taskmap: Any = None) -> None:
        self._nodeids: list[int] = []
        if taskmap is None:
            return
        if isinstance(taskmap, TaskMap):
            self._nodeids = list(taskmap._nodeids)
        elif isinstance(taskmap, (str, bytes)):
            self._nodeids = TaskMap.decode(taskmap)._nodeids
        else:
            self._nodeids = expand(_blocks_of_json(taskmap))

    @classmethod
    def decode(cls, taskmap: str | bytes) -> "TaskMap":
        """A TaskMap from RFC 34 JSON, a ``PMI_process_mapping`` vector or the raw form.

        ValueError if TASKMAP is none of them.
        """
        if isinstance(taskmap, bytes):
            taskmap = taskmap.decode()
        if not isinstance(taskmap, str):
            raise TypeError(f"TaskMap.decode() expected a string, got {type(taskmap).__name__}")
        text = taskmap.strip()
        out = cls()
        if not text:
            return out          # an empty PMI_process_mapping: the unknown map
        if "vector," in text:
            try:
                out._nodeids = decode_process_mapping(text)
            except ValueError:
                raise ValueError(f"unable to parse PMI_process_mapping '{taskmap}'") from None
            return out
        if text[0] in "[{":
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"invalid taskmap '{taskmap}': {exc}") from None
            out._nodeids = expand(_blocks_of_json(obj))
            return out
        out._nodeids = decode_raw_taskmap(text)
        return out

    @classmethod
    def from_nodeids(cls, nodeids: Iterable[int]) -> "TaskMap":
        """The map in which task i runs on node NODEIDS[i]."""
        out = cls()
        ids = [int(n) for n in nodeids]
        if any(n < 0 for n in ids):
            raise ValueError("node ids must be non-negative")
        out._nodeids = ids
        return out

    def append(self, nodeid: int, nnodes: int = 1, ppn: int = 1) -> "TaskMap":
        """Add PPN tasks on each of NNODES nodes from NODEID, after the tasks already mapped."""
        if type(nodeid) is not int or type(nnodes) is not int or type(ppn) is not int \
                or nodeid < 0 or nnodes <= 0 or ppn <= 0:
            raise ValueError(f"invalid block ({nodeid},{nnodes},{ppn}): nodeid must be >= 0, "
                             "nnodes and ppn > 0")
        self._nodeids.extend(expand([(nodeid, nnodes, ppn)]))
        return self

    # -- queries -------------------------------------------------------------------------
    @property
    def unknown(self) -> bool:
        """True for the empty map (the mapping is not known)."""
        return not self._nodeids

    def _known(self) -> None:
        if not self._nodeids:
            raise ValueError("the task map is unknown (empty)")

    @property
    def entries(self) -> list[list[int]]:
        """The RFC 34 blocks ``[nodeid, nnodes, ppn, repeat]``."""
        if not self._nodeids:
            return []
        return orjson.loads(encode_taskmap(self._nodeids))["map"]

    @property
    def nnodes(self) -> int:
        """How many nodes the map spans (the highest node id + 1)."""
        self._known()
        return max(self._nodeids) + 1

    @property
    def total_nnodes(self) -> int:
        """Same as ``nnodes``."""
        return self.nnodes

    @property
    def total_ntasks(self) -> int:
        """How many tasks the map places."""
        self._known()
        return len(self._nodeids)

    def nodeid(self, taskid: int) -> int:
        """The node running task TASKID."""
        self._known()
        if type(taskid) is not int or not 0 <= taskid < len(self._nodeids):
            raise ValueError(f"invalid taskid {taskid}: the task map has "
                             f"{len(self._nodeids)} task(s)")
        return self._nodeids[taskid]

    def tasks(self, nodeid: int) -> list[int]:
        """The task ids on node NODEID, in order."""
        self._known()
        nodes = tasks_by_node(self._nodeids)
        if type(nodeid) is not int or not 0 <= nodeid < len(nodes) or not nodes[nodeid]:
            raise ValueError(f"invalid nodeid {nodeid}: no tasks of the task map run there")
        return nodes[nodeid]

    def taskids(self, nodeid: int) -> IDset:
        """The task ids on node NODEID, as an IDset."""
        return IDset(self.tasks(nodeid))

    def ntasks(self, nodeid: int) -> int:
        """How many tasks run on node NODEID."""
        return len(self.tasks(nodeid))

    def nodeids(self) -> list[int]:
        """The node of every task, task 0 first."""
        return list(self._nodeids)

    def check(self, other: "TaskMap") -> None:
        """ValueError unless OTHER has as many nodes, tasks, and tasks on each node."""
        if self.nnodes != other.nnodes:
            raise ValueError(f"got {other.nnodes} nodes, expected {self.nnodes}")
        if self.total_ntasks != other.total_ntasks:
            raise ValueError(f"got {other.total_ntasks} total tasks, "
                             f"expected {self.total_ntasks}")
        mine, theirs = tasks_by_node(self._nodeids), tasks_by_node(other._nodeids)
        for node, (a, b) in enumerate(zip(mine, theirs)):
            if len(a) != len(b):
                raise ValueError(f"node {node} has {len(b)} tasks, expected {len(a)}")

    # -- encodings -----------------------------------------------------------------------
    def encode(self, fmt: str | None = None, hosts: Sequence[str] | None = None) -> str:
        """The map as text; FMT as ``flux job taskmap --to`` (plus ``wrapped``).

        None: the bare RFC 34 array (``[[0,2,2,1]]``); ``wrapped``:
        ``{"version":1,"map":[...]}``; ``raw``: each node's task idset,
        ``;``-separated; ``pmi``: a ``PMI_process_mapping`` vector;
        ``multiline``: the node of each task, one a line; ``hosts``:
        ``HOST: TASKIDS`` lines, HOSTS naming each node.
        """
        if fmt is None:
            return orjson.dumps(self.entries).decode()
        if fmt == "wrapped":
            return orjson.dumps({"version": 1, "map": self.entries}).decode()
        if fmt == "pmi":
            return encode_process_mapping(self._nodeids) if self._nodeids else ""
        if fmt == "raw":
            return encode_raw_taskmap(self._nodeids) if self._nodeids else ""
        if fmt == "multiline":
            return "\n".join(str(n) for n in self._nodeids)
        if fmt == "hosts":
            if hosts is None:
                raise ValueError("hosts: a hostname for each node is required")
            names = list(hosts)
            lines = []
            for node, tasks in enumerate(tasks_by_node(self._nodeids)):
                if node >= len(names):
                    raise ValueError(f"node {node} has no hostname")
                lines.append(f"{names[node]}: {IDset(tasks).encode()}")
            return "\n".join(lines)
        raise ValueError(f"unknown taskmap format '{fmt}' (expected one of "
                         f"{', '.join(FORMATS)})")

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"TaskMap('{self.encode()}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskMap):
            return self._nodeids == other._nodeids
        if isinstance(other, str):
            try:
                return self._nodeids == TaskMap.decode(other)._nodeids
            except ValueError:
                return False
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
