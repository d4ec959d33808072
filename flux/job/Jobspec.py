"""flux.job.Jobspec: RFC 14 (canonical) and RFC 25 (version 1) jobspec.

``Jobspec`` wraps a canonical jobspec, ``JobspecV1`` the version 1 subset
every Flux instance runs, with the factories the submission commands use:
``from_submit``, ``from_batch``, ``from_alloc`` (a low-level factory plus
``apply_options``, which applies every ``flux submit`` option and the CLI
plugins' options; our ``flux submit``/``flux run`` build jobspecs this
way), and the low-level ``from_command``, ``from_batch_command``,
``from_nest_command``, ``per_resource``.  The option rules live in
``flux.job._utils``.  ``validate_jobspec`` is the check job submission runs:
hand-written, so the common valid case costs one pass over the document.
Every rejection names the offending path (``tasks[0].count.per_slot: must
be 1``) and is a TypeError (wrong type) or ValueError (wrong value), as
with Flux's bindings.  Rules and vectors: ``specs/jobspec.md``.
"""
from __future__ import annotations

import base64
import errno
import math
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import IO, Any

from flux.job.dependency import validate_dependency
from flux.util.fsd import parse_fsd

__all__ = ["Jobspec", "JobspecV1", "validate_jobspec"]

_TOP_LEVEL_KEYS = ("resources", "tasks", "attributes", "version")


# --------------------------------------------------------------------------
# small helpers shared by the validators

def _typename(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "list"
    return type(value).__name__


def _type_error(path: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{path}: must be {expected}, not {_typename(value)}")


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is not an integer count


def _is_number(value: Any) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _check_top_level(doc: Any) -> None:
    if not isinstance(doc, Mapping):
        raise _type_error("jobspec", "an object", doc)
    if len(doc) != 4 or any(key not in doc for key in _TOP_LEVEL_KEYS):
        for key in _TOP_LEVEL_KEYS:
            if key not in doc:
                raise ValueError(f"jobspec: missing required key '{key}'")
        extra = sorted(str(k) for k in doc if k not in _TOP_LEVEL_KEYS)
        raise ValueError(f"jobspec: unknown top-level key '{extra[0]}'")


# --------------------------------------------------------------------------
# attributes (RFC 14 system attributes; shared by canonical and V1)

_CONSTRAINT_BAD_CHARS = frozenset("&'\"`|()")


def _check_constraint(node: Any, path: str) -> None:
    """RFC 31 constraint object: operators and their argument lists."""
    if not isinstance(node, Mapping):
        raise _type_error(path, "an object", node)
    for op, args in node.items():
        sub = f"{path}.{op}"
        if not _is_list(args):
            raise _type_error(sub, "a list", args)
        if op in ("and", "or", "not"):
            for i, child in enumerate(args):
                _check_constraint(child, f"{sub}[{i}]")
        elif op in ("properties", "hostlist", "ranks"):
            for i, arg in enumerate(args):
                if not isinstance(arg, str):
                    raise _type_error(f"{sub}[{i}]", "a string", arg)
                if op == "properties" and not _CONSTRAINT_BAD_CHARS.isdisjoint(arg):
                    raise ValueError(f"{sub}[{i}]: invalid character in property '{arg}'")
        else:
            raise ValueError(f"{path}: unknown constraint operator '{op}'")


def _check_string_map(value: Any, path: str, allow_null: bool) -> None:
    if not isinstance(value, Mapping):
        raise _type_error(path, "an object", value)
    for key, val in value.items():
        if type(val) is not str and not (allow_null and val is None):
            raise _type_error(f"{path}.{key}", "a string or null" if allow_null else "a string",
                              val)


def check_environment(system: Mapping[str, Any]) -> None:
    """The check ``validate_jobspec`` makes of attributes.system.environment (TypeError)."""
    if "environment" in system:
        _check_string_map(system["environment"], "attributes.system.environment",
                          allow_null=True)


def _check_system(system: Any, v1: bool) -> None:
    path = "attributes.system"
    if not isinstance(system, Mapping):
        raise _type_error(path, "an object", system)
    if "duration" in system:
        duration = system["duration"]
        if not _is_number(duration):
            if type(duration) in (int, float):
                raise ValueError(f"{path}.duration: must be a finite number")
            raise _type_error(f"{path}.duration", "a number", duration)
        if duration < 0:
            raise ValueError(f"{path}.duration: must be >= 0 (got {duration})")
    elif v1:
        raise ValueError(f"{path}.duration: required in version 1 jobspec")
    for key in ("cwd", "queue", "bank", "project"):
        if key in system and type(system[key]) is not str:
            raise _type_error(f"{path}.{key}", "a string", system[key])
    if "preemptible-after" in system:
        value = system["preemptible-after"]
        if not _is_number(value) or value < 0:
            raise ValueError(f"{path}.preemptible-after: must be a number >= 0")
    check_environment(system)
    if "job" in system:
        _check_string_map(system["job"], f"{path}.job", allow_null=False)
    if "dependencies" in system:
        deps = system["dependencies"]
        if not _is_list(deps):
            raise _type_error(f"{path}.dependencies", "a list", deps)
        for i, dep in enumerate(deps):
            validate_dependency(dep, f"{path}.dependencies[{i}]")
    if "constraints" in system:
        _check_constraint(system["constraints"], f"{path}.constraints")
    if "shell" in system:
        shell = system["shell"]
        if not isinstance(shell, Mapping):
            raise _type_error(f"{path}.shell", "an object", shell)
        if "options" in shell and not isinstance(shell["options"], Mapping):
            raise _type_error(f"{path}.shell.options", "an object", shell["options"])
    if "files" in system:
        files = system["files"]
        if not isinstance(files, Mapping):
            raise _type_error(f"{path}.files", "an object", files)
        for name, entry in files.items():
            if not isinstance(entry, Mapping):
                raise _type_error(f"{path}.files.{name}", "an object", entry)


def _check_attributes(attributes: Any, v1: bool) -> None:
    if not isinstance(attributes, Mapping):
        raise TypeError("attributes must be a mapping")  # Flux's text
    for key in attributes:
        if key not in ("system", "user"):
            raise ValueError(f"attributes: unknown key '{key}' (only 'system' and 'user')")
    if "user" in attributes and not isinstance(attributes["user"], Mapping):
        raise _type_error("attributes.user", "an object", attributes["user"])
    if "system" in attributes:
        _check_system(attributes["system"], v1)
    elif v1:
        raise ValueError("attributes.system: required in version 1 jobspec")


# --------------------------------------------------------------------------
# RFC 25 version 1

_V1_VERTEX_KEYS = frozenset(("type", "count", "unit", "with", "label", "exclusive"))


def _check_v1_vertex(vertex: Any, path: str, minimum: int) -> tuple[str, int]:
    """Common checks of one V1 vertex; returns (type, count)."""
    if not isinstance(vertex, Mapping):
        raise _type_error(path, "an object", vertex)
    for key in vertex:
        if key not in _V1_VERTEX_KEYS:
            raise ValueError(f"{path}: unknown key '{key}'")
    if "type" not in vertex:
        raise ValueError(f"{path}: missing required key 'type'")
    rtype = vertex["type"]
    if type(rtype) is not str:
        raise _type_error(f"{path}.type", "a string", rtype)
    if "count" not in vertex:
        raise ValueError(f"{path}: missing required key 'count'")
    count = vertex["count"]
    if not _is_int(count):
        raise _type_error(f"{path}.count", "an integer (version 1 counts are fixed)", count)
    if count < minimum:
        raise ValueError(f"{path}.count: must be >= {minimum} (got {count})")
    if "unit" in vertex and type(vertex["unit"]) is not str:
        raise _type_error(f"{path}.unit", "a string", vertex["unit"])
    if "label" in vertex and type(vertex["label"]) is not str:
        raise _type_error(f"{path}.label", "a string", vertex["label"])
    if "exclusive" in vertex and type(vertex["exclusive"]) is not bool:
        raise _type_error(f"{path}.exclusive", "a boolean", vertex["exclusive"])
    return rtype, count


def _v1_children(vertex: Mapping, path: str, least: int, most: int) -> Sequence:
    if "with" not in vertex:
        raise ValueError(f"{path}: missing required key 'with'")
    children = vertex["with"]
    if not _is_list(children):
        raise _type_error(f"{path}.with", "a list", children)
    if not least <= len(children) <= most:
        want = f"exactly {least} vertex" if least == most == 1 else f"{least} to {most} vertices"
        raise ValueError(f"{path}.with: must hold {want} (got {len(children)})")
    return children


def _check_v1_slot(slot: Any, path: str) -> tuple[str, int]:
    """Check a V1 slot and its core[,gpu] children; return (label, count)."""
    rtype, count = _check_v1_vertex(slot, path, 1)
    if rtype != "slot":
        raise ValueError(f"{path}.type: must be 'slot' (got '{rtype}')")
    if "label" not in slot:
        raise ValueError(f"{path}: a slot needs a 'label'")
    seen: set[str] = set()
    for i, child in enumerate(_v1_children(slot, path, 1, 2)):
        cpath = f"{path}.with[{i}]"
        if isinstance(child, Mapping) and child.get("type") == "gpu":
            ctype, _ = _check_v1_vertex(child, cpath, 0)
        else:
            ctype, _ = _check_v1_vertex(child, cpath, 1)
        if ctype not in ("core", "gpu"):
            raise ValueError(f"{cpath}.type: must be 'core' or 'gpu' in a version 1 slot "
                             f"(got '{ctype}')")
        if ctype in seen:
            raise ValueError(f"{cpath}.type: '{ctype}' given twice in one slot")
        seen.add(ctype)
        if "with" in child:
            raise ValueError(f"{cpath}: a {ctype} vertex cannot have 'with'")
    if "core" not in seen:
        raise ValueError(f"{path}.with: a version 1 slot must contain a 'core' vertex")
    return slot["label"], count


def _check_v1_resources(resources: Any) -> tuple[str, int, int]:
    """Return (slot label, node count or 0, total slot count)."""
    if not _is_list(resources):
        raise _type_error("resources", "a list", resources)
    if len(resources) != 1:
        raise ValueError(f"resources: must hold exactly one node or slot vertex "
                         f"(got {len(resources)})")
    top = resources[0]
    rtype, count = _check_v1_vertex(top, "resources[0]", 1)
    if rtype == "node":
        (child,) = _v1_children(top, "resources[0]", 1, 1)
        label, nslots = _check_v1_slot(child, "resources[0].with[0]")
        return label, count, count * nslots
    if rtype == "slot":
        label, nslots = _check_v1_slot(top, "resources[0]")
        return label, 0, nslots
    raise ValueError(f"resources[0].type: must be 'node' or 'slot' (got '{rtype}')")


def _check_command(command: Any, path: str) -> None:
    if not _is_list(command):
        raise _type_error(path, "a list of strings", command)
    if not command:
        raise ValueError(f"{path}: must not be empty")
    for i, arg in enumerate(command):
        if type(arg) is not str:
            raise _type_error(f"{path}[{i}]", "a string", arg)


def _check_v1_tasks(tasks: Any, nnodes: int) -> None:
    """One task: command, slot (any string: Flux does not tie it to the slot
    label) and a per_slot/total count; other keys are accepted, as Flux does."""
    if not _is_list(tasks):
        raise _type_error("tasks", "a list", tasks)
    if len(tasks) != 1:
        raise ValueError(f"tasks: must hold exactly one task (got {len(tasks)})")
    task = tasks[0]
    path = "tasks[0]"
    if not isinstance(task, Mapping):
        raise _type_error(path, "an object", task)
    for key in ("command", "slot", "count"):
        if key not in task:
            raise ValueError(f"{path}: missing required key '{key}'")
    _check_command(task["command"], f"{path}.command")
    slot = task["slot"]
    if type(slot) is not str:
        raise _type_error(f"{path}.slot", "a string", slot)
    if "attributes" in task and not isinstance(task["attributes"], Mapping):
        raise _type_error(f"{path}.attributes", "an object", task["attributes"])
    count = task["count"]
    cpath = f"{path}.count"
    if not isinstance(count, Mapping):
        raise _type_error(cpath, "an object", count)
    if len(count) != 1:
        raise ValueError(f"{cpath}: must have exactly one of 'per_slot' or 'total' "
                         f"(got {len(count)} keys)")
    if "per_slot" in count:
        value = count["per_slot"]
        if not _is_int(value):
            raise _type_error(f"{cpath}.per_slot", "an integer", value)
        if value != 1:
            raise ValueError(f"{cpath}.per_slot: must be 1 (got {value})")
    elif "total" in count:
        value = count["total"]
        if not _is_int(value):
            raise _type_error(f"{cpath}.total", "an integer", value)
        if value < 1:
            raise ValueError(f"{cpath}.total: must be >= 1 (got {value})")
        # more tasks than slots is fine (tasks are dealt to the slots in turn)
        if value < nnodes:
            raise ValueError(f"{cpath}.total: must be >= the number of nodes "
                             f"{nnodes} (got {value})")
    elif "per_resource" in count:
        raise ValueError(f"{cpath}.per_resource: not allowed in version 1 jobspec")
    else:
        key = next(iter(count))
        raise ValueError(f"{cpath}: unknown key '{key}' (use 'per_slot' or 'total')")


def _check_v1(doc: Mapping) -> None:
    """Raise TypeError/ValueError naming the path unless ``doc`` is RFC 25 V1."""
    version = doc["version"]
    if not _is_int(version):
        raise _type_error("version", "an integer", version)
    if version != 1:
        raise ValueError(f"version: must be 1 (got {version})")
    _label, nnodes, _nslots = _check_v1_resources(doc["resources"])
    _check_v1_tasks(doc["tasks"], nnodes)
    _check_attributes(doc["attributes"], v1=True)


# --------------------------------------------------------------------------
# RFC 14 canonical

_CANON_VERTEX_KEYS = frozenset(("type", "count", "unit", "with", "label", "exclusive", "id"))
_IDSET_TOKEN = re.compile(r"(0|[1-9]\d*)(?:-(0|[1-9]\d*))?\Z")
_RANGE = re.compile(r"(\d+)(?:-(\d+)|\+)(?::(\d+)(?::(.))?)?\Z")


def _check_range(rng: Mapping, path: str) -> None:
    """RFC 14 count range ``{min, max?, operator?, operand?}``."""
    if "min" not in rng:
        raise ValueError(f"{path}: a count range needs 'min'")
    for key in rng:
        if key not in ("min", "max", "operand", "operator"):
            raise ValueError(f"{path}: unknown key '{key}'")
    for key in ("min", "max", "operand"):
        if key in rng:
            if not _is_int(rng[key]):
                raise _type_error(f"{path}.{key}", "an integer", rng[key])
            if rng[key] < 1:
                raise ValueError(f"{path}.{key}: must be >= 1 (got {rng[key]})")
    if "max" in rng and rng["max"] < rng["min"]:
        raise ValueError(f"{path}.max: must be >= min")
    if ("operand" in rng) != ("operator" in rng):
        raise ValueError(f"{path}: 'operand' and 'operator' must be given together")
    if "operator" in rng:
        operator = rng["operator"]
        if type(operator) is not str or len(operator) != 1:
            raise _type_error(f"{path}.operator", "a single character", operator)
        if operator not in "+*^":
            raise ValueError(f"{path}.operator: must be one of '+', '*', '^' (got '{operator}')")
        if operator in "*^" and rng["operand"] < 2:
            raise ValueError(f"{path}.operand: must be >= 2 for operator '{operator}'")
        if operator == "^" and rng["min"] < 2:
            raise ValueError(f"{path}.min: must be >= 2 for operator '^'")


def _is_idset(text: str) -> bool:
    """RFC 22: ascending, non-overlapping ids and ranges, optional brackets."""
    if text.startswith("[") != text.endswith("]"):
        return False
    body = text[1:-1] if text.startswith("[") else text
    last = -1
    for token in body.split(","):
        match = _IDSET_TOKEN.match(token)
        if match is None:
            return False
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low <= last or high < low:
            return False
        last = high
    return True


def _check_count_string(count: str, path: str) -> None:
    if _is_idset(count):
        return
    match = _RANGE.match(count)
    if match is None:
        raise ValueError(f"{path}: '{count}' is not an RFC 22 idset or an RFC 45 range")
    rng: dict[str, Any] = {"min": int(match.group(1))}
    if match.group(2) is not None:
        rng["max"] = int(match.group(2))
    if match.group(3) is not None:
        rng["operand"] = int(match.group(3))
        rng["operator"] = match.group(4) or "+"
    _check_range(rng, path)


def _check_canon_vertex(vertex: Any, path: str, labels: dict[str, str],
                        slot_labels: set[str]) -> None:
    if not isinstance(vertex, Mapping):
        raise _type_error(path, "an object", vertex)
    for key in vertex:
        if key not in _CANON_VERTEX_KEYS:
            raise ValueError(f"{path}: unknown key '{key}'")
    if "type" not in vertex:
        raise ValueError(f"{path}: missing required key 'type'")
    rtype = vertex["type"]
    if type(rtype) is not str:
        raise _type_error(f"{path}.type", "a string", rtype)
    if "count" not in vertex:
        raise ValueError(f"{path}: missing required key 'count'")
    count = vertex["count"]
    if isinstance(count, Mapping):
        _check_range(count, f"{path}.count")
    elif isinstance(count, str):
        _check_count_string(count, f"{path}.count")
    elif not _is_int(count):
        raise _type_error(f"{path}.count", "an integer, idset string or range object", count)
    else:
        minimum = 1 if rtype in ("node", "slot", "core") else 0
        if count < minimum:
            raise ValueError(f"{path}.count: must be >= {minimum} (got {count})")
    for key in ("id", "unit", "label"):
        if key in vertex and type(vertex[key]) is not str:
            raise _type_error(f"{path}.{key}", "a string", vertex[key])
    if "exclusive" in vertex and type(vertex["exclusive"]) is not bool:
        raise _type_error(f"{path}.exclusive", "a boolean", vertex["exclusive"])
    if "label" in vertex:
        if vertex["label"] in labels:
            raise ValueError(f"{path}.label: '{vertex['label']}' is already used by "
                             f"{labels[vertex['label']]}")
        labels[vertex["label"]] = path
    if rtype == "slot":
        if "label" not in vertex:
            raise ValueError(f"{path}: a slot needs a 'label'")
        slot_labels.add(vertex["label"])
        if not vertex.get("with"):
            raise ValueError(f"{path}: a slot needs at least one vertex in 'with'")
    if "with" in vertex:
        children = vertex["with"]
        if not _is_list(children):
            raise _type_error(f"{path}.with", "a list", children)
        for i, child in enumerate(children):
            _check_canon_vertex(child, f"{path}.with[{i}]", labels, slot_labels)


def _check_canon_task(task: Any, path: str, slot_labels: set[str]) -> None:
    if not isinstance(task, Mapping):
        raise _type_error(path, "an object", task)
    for key in ("command", "slot", "count"):
        if key not in task:
            raise ValueError(f"{path}: missing required key '{key}'")
    _check_command(task["command"], f"{path}.command")
    slot = task["slot"]
    if type(slot) is not str:
        raise _type_error(f"{path}.slot", "a string", slot)
    if "attributes" in task and not isinstance(task["attributes"], Mapping):
        raise _type_error(f"{path}.attributes", "an object", task["attributes"])
    if "distribution" in task and type(task["distribution"]) is not str:
        raise _type_error(f"{path}.distribution", "a string", task["distribution"])
    count = task["count"]
    cpath = f"{path}.count"
    if not isinstance(count, Mapping):
        raise _type_error(cpath, "an object", count)
    if len(count) != 1:
        raise ValueError(f"{cpath}: must have exactly one of 'per_slot', 'per_resource' "
                         f"or 'total' (got {len(count)} keys)")
    key, value = next(iter(count.items()))
    if key in ("per_slot", "total"):
        if not _is_int(value):
            raise _type_error(f"{cpath}.{key}", "an integer", value)
        if value < 1:
            raise ValueError(f"{cpath}.{key}: must be >= 1 (got {value})")
    elif key == "per_resource":
        if not isinstance(value, Mapping):
            raise _type_error(f"{cpath}.per_resource", "an object", value)
        if type(value.get("type")) is not str:
            raise _type_error(f"{cpath}.per_resource.type", "a string", value.get("type"))
        if not _is_int(value.get("count")) or value["count"] < 1:
            raise ValueError(f"{cpath}.per_resource.count: must be an integer >= 1")
    else:
        raise ValueError(f"{cpath}: unknown key '{key}'")


def _check_canonical(doc: Mapping) -> None:
    """Raise TypeError/ValueError naming the path unless ``doc`` is RFC 14 jobspec."""
    version = doc["version"]
    if not _is_int(version):
        raise _type_error("version", "an integer", version)
    if version < 1:
        raise ValueError(f"version: must be >= 1 (got {version})")
    resources = doc["resources"]
    if not _is_list(resources):
        raise _type_error("resources", "a list", resources)
    if not resources:
        raise ValueError("resources: must hold at least one vertex")
    labels: dict[str, str] = {}
    slot_labels: set[str] = set()
    for i, vertex in enumerate(resources):
        _check_canon_vertex(vertex, f"resources[{i}]", labels, slot_labels)
    tasks = doc["tasks"]
    if not _is_list(tasks):
        raise _type_error("tasks", "a list", tasks)
    if not tasks:
        raise ValueError("tasks: must hold at least one task")
    for i, task in enumerate(tasks):
        _check_canon_task(task, f"tasks[{i}]", slot_labels)
    _check_attributes(doc["attributes"], v1=False)


# --------------------------------------------------------------------------
# dotted attribute keys

def _attr_key(key: str) -> str:
    """``duration`` -> ``attributes.system.duration``; ``user.x`` -> ``attributes.user.x``."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"attribute key must be a non-empty string, not {key!r}")
    if key.startswith("attributes."):
        return key
    if key.startswith(("system.", "user.")):
        return f"attributes.{key}"
    return f"attributes.system.{key}"


def _set_treedict(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"failed to set {key}: empty component in dotted key")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise TypeError(f"failed to set {key} to {value!r}: "
                            f"{prefix} is a {_typename(child)}, not an object")
        node = child
    node[parts[-1]] = value


def _del_treedict(tree: dict, key: str, keep: int = 2) -> None:
    """Remove dotted KEY from TREE if present, then the objects it leaves empty
    (but never the first KEEP levels: ``attributes.system`` stays)."""
    parts = key.split(".")
    chain: list[dict] = [tree]
    for part in parts[:-1]:
        child = chain[-1].get(part)
        if not isinstance(child, dict):
            return
        chain.append(child)
    if parts[-1] not in chain[-1]:
        return
    del chain[-1][parts[-1]]
    for depth in range(len(chain) - 1, keep, -1):
        if chain[depth]:
            break
        del chain[depth - 1][parts[depth - 1]]


# --------------------------------------------------------------------------
# the Jobspec classes

#: ``attributes`` left out of a constructor call (None is refused, as by Flux)
_DEFAULT: Any = object()

class Jobspec:
    """A canonical (RFC 14) jobspec.

    ``Jobspec(resources, tasks, attributes={}, version=1)``; also
    ``Jobspec(**jobspec_dict)``.  The document is validated on
    construction and kept in ``self.jobspec``; the setters change it in
    place without validating again (``validate_jobspec`` checks the result).
    """

    top_level_keys = {"attributes", "resources", "tasks", "version"}

    def __init__(self, resources: Any, tasks: Any, attributes: Any = _DEFAULT,
                 version: Any = 1) -> None:
        if attributes is _DEFAULT:
            attributes = self._default_attributes()
        self.jobspec: dict[str, Any] = {
            "resources": resources,
            "tasks": tasks,
            "attributes": attributes,
            "version": version,
        }
        self._check(self.jobspec)

    @staticmethod
    def _default_attributes() -> dict[str, Any]:
        return {}

    @classmethod
    def _unchecked(cls, doc: dict[str, Any]) -> "Jobspec":
        """An object over DOC (shared, not copied) without validating it again
        (job-ingest hands an already checked jobspec to the CLI plugins)."""
        obj = cls.__new__(cls)
        obj.jobspec = doc
        return obj

    @staticmethod
    def _check(doc: Mapping) -> None:
        _check_canonical(doc)

    # -- construction from YAML / JSON documents

    @classmethod
    def from_yaml_stream(cls, yaml_stream: IO | str | bytes) -> "Jobspec":
        """Create a jobspec from a YAML file-like object (or YAML text)."""
        import yaml

        try:
            doc = yaml.safe_load(yaml_stream)
        except yaml.YAMLError as exc:
            raise ValueError(f"jobspec is not valid YAML: {exc}") from None
        _check_top_level(doc)
        return cls(**doc)

    @classmethod
    def from_yaml_file(cls, filename: str | os.PathLike) -> "Jobspec":
        """Create a jobspec from a path to a YAML file."""
        with open(filename, "rb") as infile:
            return cls.from_yaml_stream(infile)

    # -- sections

    @property
    def resources(self) -> Any:
        """Jobspec resources section."""
        return self.jobspec.get("resources")

    @property
    def tasks(self) -> Any:
        """Jobspec tasks section."""
        return self.jobspec.get("tasks")

    @property
    def attributes(self) -> Any:
        """Jobspec attributes section."""
        return self.jobspec.get("attributes")

    @property
    def version(self) -> Any:
        """Jobspec version."""
        return self.jobspec.get("version")

    # -- dotted attribute access

    def getattr(self, key: str) -> Any:
        """Get an attribute by dotted key (``system.duration``, ``duration``,
        ``attributes.user.x``); KeyError names a key that is not set."""
        full = _attr_key(key)
        value: Any = self.jobspec
        for part in full.split("."):
            if not isinstance(value, Mapping) or value.get(part) is None:
                raise KeyError(full)
            value = value[part]
        return value

    def setattr(self, key: str, val: Any) -> None:
        """Set a job attribute by dotted key.

        A key without the ``attributes.`` prefix gets ``attributes.system.``
        (or ``attributes.`` when it starts with ``system.`` or ``user.``).
        Missing objects on the way are created; TypeError if the path runs
        through a non-object value.
        """
        _set_treedict(self.jobspec, _attr_key(key), val)

    def setattr_shell_option(self, key: str, val: Any) -> None:
        """Set ``attributes.system.shell.options.KEY``."""
        self.setattr(f"system.shell.options.{key}", val)

    def _system(self) -> Mapping:
        attributes = self.jobspec.get("attributes") or {}
        return attributes.get("system") or {}

    # -- common attributes

    @property
    def duration(self) -> Any:
        """Job's time limit in seconds (0 means not set), or None.

        The setter takes seconds (int or float), an RFC 23 duration string
        or a ``datetime.timedelta``.
        """
        return self._system().get("duration")

    @duration.setter
    def duration(self, duration: Any) -> None:
        if isinstance(duration, str):
            seconds = parse_fsd(duration)
        elif _is_timedelta(duration):
            seconds = duration.total_seconds()
        elif isinstance(duration, (int, float)) and not isinstance(duration, bool):
            seconds = float(duration)
        else:
            raise TypeError("duration must be an int, float, string, or timedelta")
        if seconds < 0:
            raise ValueError("duration must not be negative")
        if math.isnan(seconds) or math.isinf(seconds):
            raise ValueError("duration must be a normal, finite value")
        self.setattr("system.duration", seconds)

    @property
    def queue(self) -> Any:
        """Target queue of job submission, or None."""
        return self._system().get("queue")

    @queue.setter
    def queue(self, queue: Any) -> None:
        if not isinstance(queue, str):
            raise TypeError("queue must be a string")
        self.setattr("system.queue", queue)

    @property
    def cwd(self) -> Any:
        """Working directory of job, or None."""
        return self._system().get("cwd")

    @cwd.setter
    def cwd(self, cwd: Any) -> None:
        if isinstance(cwd, os.PathLike):
            cwd = os.fspath(cwd)
        if not isinstance(cwd, str):
            raise ValueError("cwd must be a string")
        self.setattr("system.cwd", cwd)

    @property
    def environment(self) -> Any:
        """Environment of job (a dict), or None."""
        return self._system().get("environment")

    @environment.setter
    def environment(self, environ: Any) -> None:
        if not isinstance(environ, Mapping):
            raise ValueError("environment must be a mapping")
        self.setattr("system.environment", environ)

    def _get_io_path(self, iotype: str, stream: str) -> Any:
        try:
            return self.getattr(f"system.shell.options.{iotype}.{stream}.path")
        except KeyError:
            return None

    def _set_io_path(self, iotype: str, stream: str, path: Any) -> None:
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError(f"The path must be a string or pathlib object, "
                            f"got {type(path).__name__}")
        self.setattr_shell_option(f"{iotype}.{stream}.type", "file")
        self.setattr_shell_option(f"{iotype}.{stream}.path", path)

    @property
    def stdin(self) -> Any:
        """Path to use for stdin, or None."""
        return self._get_io_path("input", "stdin")

    @stdin.setter
    def stdin(self, path: Any) -> None:
        self._set_io_path("input", "stdin", path)

    @property
    def stdout(self) -> Any:
        """Path to use for stdout, or None."""
        return self._get_io_path("output", "stdout")

    @stdout.setter
    def stdout(self, path: Any) -> None:
        self._set_io_path("output", "stdout", path)

    @property
    def stderr(self) -> Any:
        """Path to use for stderr, or None."""
        return self._get_io_path("output", "stderr")

    @stderr.setter
    def stderr(self, path: Any) -> None:
        self._set_io_path("output", "stderr", path)

    # newer Flux names for the same three paths
    input = stdin
    output = stdout
    error = stderr

    @property
    def unbuffered(self) -> bool:
        """True when stdout and stderr are both unbuffered (buffer type ``none``).

        Setting True sets the shell options ``output.stdout.buffer.type``
        and ``output.stderr.buffer.type`` to ``"none"``,
        ``output.batch-timeout`` to 0.05 and ``input.batch-timeout`` to 0;
        setting False removes the buffer types, and each batch-timeout
        still at that value.  TypeError unless a bool.
        """
        try:
            return (self.getattr("shell.options.output.stdout.buffer.type") == "none"
                    and self.getattr("shell.options.output.stderr.buffer.type") == "none")
        except KeyError:
            return False

    @unbuffered.setter
    def unbuffered(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError("unbuffered must be True or False")
        if value:
            self.setattr_shell_option("output.stdout.buffer.type", "none")
            self.setattr_shell_option("output.stderr.buffer.type", "none")
            self.setattr_shell_option("output.batch-timeout", 0.05)
            self.setattr_shell_option("input.batch-timeout", 0.0)
            return
        options = "attributes.system.shell.options"
        _del_treedict(self.jobspec, f"{options}.output.stdout.buffer")
        _del_treedict(self.jobspec, f"{options}.output.stderr.buffer")
        for key, value in (("output.batch-timeout", 0.05), ("input.batch-timeout", 0.0)):
            try:
                current = self.getattr(f"shell.options.{key}")
            except KeyError:
                continue
            if current == value and not isinstance(current, bool):
                _del_treedict(self.jobspec, f"{options}.{key}")

    def add_file(self, path: str, data: Any, perms: int | None = None,
                 encoding: str | None = None) -> None:
        """Add a file to ``attributes.system.files`` (RFC 37 archive entry).

        ``data`` is the file content when it is a dict (stored as JSON
        data), when ``encoding`` ("utf-8" or "base64") is given, or when it
        contains a newline; otherwise it is the path of a local file to
        read (its mode is kept; content stored as UTF-8 or base64).
        """
        if not isinstance(data, (Mapping, str)):
            raise TypeError("data must be a Mapping or string")
        if perms is None:
            perms = 0o600
        entry: dict[str, Any] = {"mode": perms | stat.S_IFREG}
        if isinstance(data, Mapping):
            entry["data"] = data
        elif encoding is not None or "\n" in data:
            encoding = encoding or "utf-8"
            if encoding not in ("utf-8", "base64"):
                raise ValueError(f"invalid encoding: {encoding}")
            entry["data"] = data
            entry["encoding"] = encoding
        else:
            st = os.stat(data)
            with open(data, "rb") as infile:
                content = infile.read()
            entry = {"mode": st.st_mode, "size": st.st_size}
            try:
                entry["data"] = content.decode("utf-8")
                entry["encoding"] = "utf-8"
            except UnicodeDecodeError:
                entry["data"] = base64.b64encode(content).decode("ascii")
                entry["encoding"] = "base64"
        attributes = self.jobspec.setdefault("attributes", {})
        files = attributes.setdefault("system", {}).setdefault("files", {})
        files[path] = entry

    # -- serialization and traversal

    def dumps(self, **kwargs: Any) -> str:
        """The jobspec as a JSON string.

        Without arguments: compact JSON (orjson).  With arguments
        (``indent``, ``sort_keys``...): ``json.dumps`` with those options.
        """
        if not kwargs:
            # (imported here: orjson's import costs more than a short ``flux run``
            # spends building and submitting its jobspec)
            import orjson

            return orjson.dumps(self.jobspec).decode()
        import json

        return json.dumps(self.jobspec, ensure_ascii=False, **kwargs)

    def __iter__(self) -> Iterator[Mapping]:
        """Resource vertices, depth-first pre-order."""
        stack = list(reversed(self.resources or []))
        while stack:
            vertex = stack.pop()
            yield vertex
            stack.extend(reversed(vertex.get("with", [])))

    def resource_walk(self) -> Iterator[tuple[Mapping | None, Mapping, int]]:
        """Yield ``(parent, resource, count)`` depth-first, pre-order.

        ``count`` multiplies the vertex's count by its ancestors' counts
        (slot 2 with core 4 gives 2 and 8).  Counts must be integers.
        """
        def walk(vertices: Sequence, parent: Mapping | None, factor: int,
                 path: str) -> Iterator[tuple[Mapping | None, Mapping, int]]:
            for i, vertex in enumerate(vertices):
                count = vertex["count"]
                if not _is_int(count):
                    raise ValueError(f"{path}[{i}].count: resource_walk needs integer counts")
                total = factor * count
                yield parent, vertex, total
                yield from walk(vertex.get("with", []), vertex, total, f"{path}[{i}].with")

        return walk(self.resources or [], None, 1, "resources")

    def resource_counts(self) -> dict[str, int]:
        """Total count of each resource type, e.g. ``{"slot": 12, "core": 18}``.

        Units are ignored: counts of one type are assumed to share a unit.
        """
        counts: dict[str, int] = {}
        for _, vertex, count in self.resource_walk():
            counts[vertex["type"]] = counts.get(vertex["type"], 0) + count
        return counts

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.resources}, {self.tasks}, "
                f"attributes={self.attributes}, version={self.version})")

    def __str__(self) -> str:
        return str(self.jobspec)


class JobspecV1(Jobspec):
    """A version 1 (RFC 25) jobspec: one task, node>slot>core[,gpu] or slot>core[,gpu].

    ``attributes`` defaults to ``{"system": {"duration": 0}}``.
    """

    def __init__(self, resources: Any, tasks: Any, attributes: Any = _DEFAULT,
                 version: Any = 1) -> None:
        super().__init__(resources, tasks, attributes, version)

    @staticmethod
    def _default_attributes() -> dict[str, Any]:
        return {"system": {"duration": 0}}

    @staticmethod
    def _check(doc: Mapping) -> None:
        _check_v1(doc)

    # -- factories

    @staticmethod
    def _resource(rtype: str, count: int, children: list | None = None,
                  exclusive: bool = False) -> dict[str, Any]:
        vertex: dict[str, Any] = {"type": rtype, "count": count}
        if exclusive:
            vertex["exclusive"] = True
        if children:
            vertex["with"] = children
        return vertex

    @classmethod
    def _slot(cls, count: int, children: list) -> dict[str, Any]:
        slot = cls._resource("slot", count, children)
        slot["label"] = "task"
        return slot

    def _set_extra_options(self, *, duration: Any = None, environment: Mapping | None = None,
                           env_expand: Mapping | None = None, cwd: Any = None,
                           rlimits: Mapping | None = None, name: str | None = None,
                           input: Any = None, output: Any = None, error: Any = None,
                           label_io: bool = False, unbuffered: Any = False,
                           queue: str | None = None, bank: str | None = None) -> "JobspecV1":
        if duration is not None:
            self.duration = duration
        # Like Flux, a job built without an explicit environment gets ours.
        self.environment = dict(os.environ) if environment is None else environment
        if env_expand is not None:
            if not isinstance(env_expand, Mapping):
                raise ValueError("env_expand must be a mapping")
            self.setattr_shell_option("env-expand", env_expand)
        if cwd is not None:
            self.cwd = cwd
        if rlimits is not None:
            if not isinstance(rlimits, Mapping):
                raise ValueError("rlimits must be a mapping")
            self.setattr_shell_option("rlimit", rlimits)
        if name is not None:
            self.setattr("system.job.name", name)
        if input is not None:
            self.stdin = input
        if output is not None and output not in ("none", "kvs"):
            self.stdout = output
            if label_io:
                self.setattr_shell_option("output.stdout.label", True)
        if error is not None and error not in ("none", "kvs"):
            self.stderr = error
            if label_io:
                self.setattr_shell_option("output.stderr.label", True)
        if unbuffered not in (False, None):
            self.unbuffered = unbuffered
        if queue is not None:
            self.queue = queue
        if bank is not None:
            self.setattr("system.bank", bank)
        return self

    @classmethod
    def from_command(cls, command: Sequence[str], num_tasks: int = 1, cores_per_task: int = 1,
                     gpus_per_task: int | None = None, num_nodes: int | None = None,
                     exclusive: bool = False, **kwargs: Any) -> "JobspecV1":
        """Build the minimum legal V1 jobspec running ``command``.

        ``num_tasks`` tasks of ``cores_per_task`` cores (and
        ``gpus_per_task`` GPUs) each; with ``num_nodes`` the slots are
        spread over that many nodes (``exclusive`` then asks for whole
        nodes).  Keyword options: duration, environment (default: a copy
        of ``os.environ``), env_expand, cwd, rlimits, name, input, output,
        error, label_io, unbuffered, queue, bank.  ``from_submit`` adds the
        ``flux submit`` options (``apply_options``) to this.
        """
        if not _is_int(num_tasks) or num_tasks < 1:
            raise ValueError("task count must be a integer >= 1")
        if not _is_int(cores_per_task) or cores_per_task < 1:
            raise ValueError("cores per task must be an integer >= 1")
        if gpus_per_task is not None and (not _is_int(gpus_per_task) or gpus_per_task < 0):
            raise ValueError("gpus per task must be an integer >= 0")
        if num_nodes is not None:
            if not _is_int(num_nodes) or num_nodes < 1:
                raise ValueError("node count must be an integer >= 1 (if set)")
            if num_nodes > num_tasks:
                raise ValueError("node count must not be greater than task count")
        elif exclusive:
            raise ValueError("exclusive can only be set with a node count")
        command = _command_list(command)
        children = [cls._resource("core", cores_per_task)]
        if gpus_per_task:
            children.append(cls._resource("gpu", gpus_per_task))
        if num_nodes is not None:
            slots_per_node = -(-num_tasks // num_nodes)
            # An uneven spread leaves some slots without a task.
            count = {"per_slot": 1} if num_tasks % num_nodes == 0 else {"total": num_tasks}
            top = cls._resource("node", num_nodes, [cls._slot(slots_per_node, children)],
                                exclusive)
        else:
            count = {"per_slot": 1}
            top = cls._slot(num_tasks, children)
        tasks = [{"command": command, "slot": "task", "count": count}]
        jobspec = cls([top], tasks, attributes={"system": {"duration": 0}})
        return jobspec._set_extra_options(**kwargs)

    @classmethod
    def per_resource(cls, command: Sequence[str], ncores: int | None = None,
                     nnodes: int | None = None, per_resource_type: str | None = None,
                     per_resource_count: int | None = None, gpus_per_node: int | None = None,
                     exclusive: bool = False, **kwargs: Any) -> "JobspecV1":
        """Build a V1 jobspec from a core and/or node count, with
        ``per_resource_count`` tasks per ``per_resource_type`` ("node" or
        "core"), recorded as the ``per-resource`` shell option."""
        per_resource = None
        if per_resource_type is not None and per_resource_count is not None:
            if not isinstance(per_resource_type, str):
                raise ValueError("per_resource_type must be a string")
            if per_resource_type not in ("node", "core"):
                raise ValueError(f"Invalid per_resource_type='{per_resource_type}' specified")
            if not _is_int(per_resource_count):
                raise ValueError("per_resource_count must be an integer")
            if per_resource_count < 1:
                raise ValueError("per_resource_count must be >= 1")
            per_resource = {"type": per_resource_type, "count": per_resource_count}
        elif per_resource_type is not None:
            raise ValueError("must specify a per_resource_count with per_resource_type")
        elif per_resource_count is not None:
            raise ValueError("must specify a per_resource_type with per_resource_count")
        if ncores is not None and (not _is_int(ncores) or ncores < 1):
            raise ValueError("ncores must be an integer >= 1")
        if gpus_per_node is not None:
            if not _is_int(gpus_per_node) or gpus_per_node < 0:
                raise ValueError("gpus_per_node must be an integer >= 0")
            if not nnodes:
                raise ValueError("gpus_per_node must be specified with nnodes")
        if nnodes is not None:
            if not _is_int(nnodes) or nnodes < 1:
                raise ValueError("nnodes must be an integer >= 1")
        elif exclusive:
            raise ValueError("exclusive can only be set with a node count")
        if nnodes and ncores:
            if ncores < nnodes:
                raise ValueError("number of cores cannot be less than nnodes")
            if ncores % nnodes:
                raise ValueError("number of cores must be evenly divisible by node count")
            nslots, slot_size = 1, ncores // nnodes
        elif ncores:
            nslots, slot_size = ncores, 1
        elif nnodes:
            if not exclusive:
                raise ValueError("Specifying nnodes also requires ncores or exclusive")
            nslots, slot_size = 1, 1
        else:
            raise ValueError("must specify node or core count with per_resource")
        children = [cls._resource("core", slot_size)]
        if gpus_per_node:
            children.append(cls._resource("gpu", gpus_per_node))
        slot = cls._slot(nslots, children)
        top = cls._resource("node", nnodes, [slot], exclusive) if nnodes else slot
        tasks = [{"command": _command_list(command), "slot": "task", "count": {"per_slot": 1}}]
        attributes: dict[str, Any] = {"system": {"duration": 0}}
        if per_resource:
            attributes["system"]["shell"] = {"options": {"per-resource": per_resource}}
        return cls([top], tasks, attributes=attributes)._set_extra_options(**kwargs)

    @classmethod
    def from_nest_command(cls, command: Sequence[str], num_slots: int = 1,
                          cores_per_slot: int = 1, gpus_per_slot: int | None = None,
                          num_nodes: int | None = None, broker_opts: Sequence[str] | None = None,
                          exclusive: bool = False, conf: Mapping | None = None,
                          **kwargs: Any) -> "JobspecV1":
        """Jobspec for a nested Flux instance whose initial program is ``command``.

        One broker per node (``flux broker [broker_opts] command``); the
        slots only size the allocation.  ``conf``, if given, is shipped as
        ``conf.json`` and passed to the brokers with ``-c``.
        """
        opts = list(broker_opts) if broker_opts is not None else []
        if conf is not None:
            opts.append("-c{{tmpdir}}/conf.json")
        jobspec = cls.from_command(["flux", "broker", *opts, *_command_list(command, empty=True)],
                                   num_tasks=num_slots, cores_per_task=cores_per_slot,
                                   gpus_per_task=gpus_per_slot, num_nodes=num_nodes,
                                   exclusive=exclusive, **kwargs)
        jobspec.setattr_shell_option("per-resource.type", "node")
        jobspec.setattr_shell_option("mpi", "none")
        jobspec.setattr_shell_option("exit-timeout", "none")
        jobspec.setattr_shell_option("pmi", "simple")
        if conf is not None:
            jobspec.add_file("conf.json", dict(conf))
        return jobspec

    @classmethod
    def from_batch_command(cls, script: str, jobname: str, args: Sequence[str] | None = None,
                           num_slots: int = 1, cores_per_slot: int = 1,
                           gpus_per_slot: int | None = None, num_nodes: int | None = None,
                           broker_opts: Sequence[str] | None = None, exclusive: bool = False,
                           conf: Mapping | None = None, **kwargs: Any) -> "JobspecV1":
        """Jobspec for a nested instance running the batch ``script`` (a string
        starting with ``#!``), shipped in the jobspec as file ``script``
        (mode 0700) and run as ``{{tmpdir}}/script ARGS``."""
        if not isinstance(script, str) or not script.startswith("#!"):
            raise ValueError(f"{jobname} does not appear to start with '#!'")
        jobspec = cls.from_nest_command(["{{tmpdir}}/script", *(args or ())],
                                        num_slots=num_slots, cores_per_slot=cores_per_slot,
                                        gpus_per_slot=gpus_per_slot, num_nodes=num_nodes,
                                        broker_opts=broker_opts, exclusive=exclusive,
                                        conf=conf, name=jobname, **kwargs)
        jobspec.add_file("script", script, perms=0o700, encoding="utf-8")
        return jobspec

    # -- flux submit / batch / alloc

    def apply_options(self, args: Any = None, *, prog: str | None = None, env: Any = None,
                      rlimit: Any = None, signal: str | None = None, taskmap: str | None = None,
                      dependency: Any = None, requires: Any = None,
                      shell_options: Mapping | None = None, time_limit: Any = None,
                      attributes: Mapping | None = None, add_file: Any = None,
                      **plugin_kwargs: Any) -> "JobspecV1":
        """Apply ``flux submit``-style options to this jobspec in place; returns self.

        ``args`` is an argparse-like namespace (or a mapping) whose
        attributes give option values, including the CLI's ``setopt`` and
        ``setattr`` string lists; keywords that are not None override it.

        - ``env``, ``rlimit``: env / rlimit rules, applied only when given
          here or when ``args`` is given (``env=[]`` copies our whole
          environment; ``rlimit=[]`` propagates Flux's default limits);
          a ``{{...}}`` value goes to the ``env-expand`` shell option;
        - ``signal="[SIG][@TIME]"`` and ``taskmap`` become those shell options;
        - ``dependency`` (URIs) fills ``system.dependencies``; ``requires``
          (RFC 35 expressions) ``system.constraints`` (ValueError on bad
          syntax);
        - ``shell_options`` (a dict) sets shell options; ``time_limit`` (FSD
          or seconds) the duration; ``attributes`` (a dict) attributes:
          keys without a prefix go under ``system.``, a leading ``.``
          means ``attributes.``;
        - ``add_file``: ``path``, ``name=path``, ``name=data``,
          ``name:perms=path`` entries.

        A bare string is accepted where a list is expected.  Other
        keywords must be option dests of a CLI plugin for ``prog``
        (TypeError otherwise); with ``prog``, the plugins' ``preinit`` and
        ``modify_jobspec`` callbacks run last.
        """
        from flux.job import _utils

        explicit = {"env": env, "rlimit": rlimit, "signal": signal, "taskmap": taskmap,
                    "dependency": dependency, "requires": requires,
                    "shell_options": shell_options, "time_limit": time_limit,
                    "attributes": attributes, "add_file": add_file}
        registry = None
        if prog:
            from flux.cli.plugin import CLIPluginRegistry

            registry = CLIPluginRegistry(prog)
        if plugin_kwargs:
            known = {opt.dest for opt in registry.options} if registry is not None else set()
            unknown = sorted(set(plugin_kwargs) - known)
            if unknown:
                raise TypeError("apply_options() got unexpected keyword argument(s): "
                                + ", ".join(repr(k) for k in unknown))
        base = _namespace_items(args)
        values: dict[str, Any] = {key: None for key in (*explicit, *plugin_kwargs)}
        values.update(base)
        values.update({k: v for k, v in {**explicit, **plugin_kwargs}.items() if v is not None})
        merged = SimpleNamespace(**values)
        for key in ("env", "rlimit", "dependency", "requires", "add_file", "setopt", "setattr"):
            if isinstance(values.get(key), str):
                setattr(merged, key, [values[key]])

        if env is not None or args is not None:
            environment, expand = _utils.get_filtered_environment(merged.env,
                                                                   base.get("environ"))
            self.environment = environment
            if expand:
                try:
                    current = self.getattr("shell.options.env-expand")
                except KeyError:
                    current = None
                merged_expand = {**current, **expand} if isinstance(current, Mapping) else expand
                self.setattr_shell_option("env-expand", merged_expand)
        if rlimit is not None or args is not None:
            limits = _utils.get_filtered_rlimits(merged.rlimit)
            if limits:
                self.setattr_shell_option("rlimit", limits)
        if merged.signal:
            self.setattr_shell_option("signal", _utils.parse_signal_option(merged.signal))
        if merged.taskmap is not None:
            self.setattr_shell_option("taskmap", _utils.uri_entry(merged.taskmap, "taskmap"))
        if merged.dependency is not None:
            self.setattr("system.dependencies",
                         _utils.dependency_array_create(merged.dependency))
        if merged.requires is not None:
            self.setattr("system.constraints", _utils.constraint_from_requires(merged.requires))
        for keyval in getattr(merged, "setopt", None) or ():
            key, value = _utils.parse_setopt(keyval)
            self.setattr_shell_option(key, value)
        for key, value in _mapping_items(merged.shell_options, "shell_options"):
            self.setattr_shell_option(key, value)
        if merged.time_limit is not None:
            try:
                seconds = _utils.decode_duration(merged.time_limit)
            except (ValueError, TypeError):
                raise ValueError(f"--time-limit: invalid Flux standard duration "
                                 f"'{merged.time_limit}'") from None
            self.duration = seconds
        for keyval in getattr(merged, "setattr", None) or ():
            key, value = _utils.parse_setattr(keyval)
            self.setattr(_utils.attribute_key(key), value)
        for key, value in _mapping_items(merged.attributes, "attributes"):
            self.setattr(_utils.attribute_key(key), value)
        for arg in merged.add_file or ():
            _utils.jobspec_add_file(self, arg)
        if registry is not None:
            for opt in registry.options:
                if opt.dest not in values:
                    setattr(merged, opt.dest, opt.kwargs.get("default"))
            registry.preinit(merged)
            registry.modify_jobspec(merged, self)
        return self

    def _with_options(self, prog: str, kwargs: dict[str, Any]) -> "JobspecV1":
        """apply_options for the from_* factories: env and rlimits propagate by
        default (unless an ``args`` namespace says what to do); ``prog=``
        names another command for the CLI plugins (``flux run`` uses
        ``from_submit`` with ``prog="run"``)."""
        if "args" not in kwargs:
            kwargs.setdefault("env", [])
            kwargs.setdefault("rlimit", [])
        kwargs.setdefault("prog", prog)
        return self.apply_options(**kwargs)

    @classmethod
    def from_submit(cls, command: Sequence[str], *, ntasks: int = 1, nodes: int | None = None,
                    cores_per_task: int = 1, gpus_per_task: int | None = None,
                    exclusive: bool = False, name: str | None = None, queue: str | None = None,
                    bank: str | None = None, cwd: Any = None, output: Any = None,
                    error: Any = None, input: Any = None, label_io: bool = False,
                    unbuffered: bool = False, per_resource: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> "JobspecV1":
        """The jobspec ``flux submit`` builds: ``from_command`` then
        ``apply_options(prog="submit", **kwargs)`` (``env=[]`` and
        ``rlimit=[]`` unless given).

        ``per_resource`` (flux-run(1)'s per-resource options: a mapping with
        any of ``cores``, ``gpus_per_node``, ``tasks_per_node``,
        ``tasks_per_core``) builds it with ``per_resource`` instead, over
        ``nodes``; ``ntasks``, ``cores_per_task`` and ``gpus_per_task`` are
        then not used.  With ``nodes`` and no ``cores``, the nodes are
        allocated whole, as ``-N`` alone does.
        """
        common = {"name": name, "queue": queue, "bank": bank, "cwd": cwd, "output": output,
                  "error": error, "input": input, "label_io": label_io,
                  "unbuffered": unbuffered}
        if per_resource is not None:
            ptype = pcount = None
            if per_resource.get("tasks_per_node") is not None:
                ptype, pcount = "node", per_resource["tasks_per_node"]
            elif per_resource.get("tasks_per_core") is not None:
                ptype, pcount = "core", per_resource["tasks_per_core"]
            cores = per_resource.get("cores")
            jobspec = cls.per_resource(command, ncores=cores, nnodes=nodes,
                                       per_resource_type=ptype, per_resource_count=pcount,
                                       gpus_per_node=per_resource.get("gpus_per_node"),
                                       exclusive=exclusive or (bool(nodes) and cores is None),
                                       **common)
        else:
            jobspec = cls.from_command(command, num_tasks=ntasks, cores_per_task=cores_per_task,
                                       gpus_per_task=gpus_per_task, num_nodes=nodes,
                                       exclusive=exclusive, **common)
        return jobspec._with_options("submit", kwargs)

    @classmethod
    def from_alloc(cls, *, nslots: int | None = None, nodes: int | None = None,
                   cores_per_slot: int = 1, gpus_per_slot: int | None = None,
                   exclusive: bool = False, broker_opts: Sequence[str] | None = None,
                   conf: Any = None, bg: bool = False, name: str | None = None,
                   queue: str | None = None, bank: str | None = None, cwd: Any = None,
                   output: Any = None, error: Any = None, input: Any = None,
                   label_io: bool = False, unbuffered: bool = False,
                   **kwargs: Any) -> "JobspecV1":
        """The jobspec ``flux alloc`` builds: a nested instance on NSLOTS slots
        (or NODES whole nodes), then ``apply_options(prog="alloc", **kwargs)``.

        ValueError without ``nslots`` or ``nodes``; ``cwd`` defaults to the
        current directory; ``bg`` adds ``-Sbroker.rc2_none=1`` to (a copy
        of) ``broker_opts`` and sets the ``pty.capture`` shell option;
        ``conf`` (dict, BatchConfig or its text) ships as ``conf.json``.
        """
        from flux.job._utils import normalize_conf

        if nslots is None:
            if nodes is None:
                raise ValueError("from_alloc() requires nslots or nodes")
            nslots = nodes
            exclusive = True
        if cwd is None:
            cwd = os.getcwd()
        if bg:
            broker_opts = [*(broker_opts or ()), "-Sbroker.rc2_none=1"]
        jobspec = cls.from_nest_command([], num_slots=nslots, cores_per_slot=cores_per_slot,
                                        gpus_per_slot=gpus_per_slot, num_nodes=nodes,
                                        broker_opts=broker_opts, exclusive=exclusive,
                                        conf=normalize_conf(conf), name=name, queue=queue,
                                        bank=bank, cwd=cwd, output=output, error=error,
                                        input=input, label_io=label_io, unbuffered=unbuffered)
        if bg:
            jobspec.setattr_shell_option("pty.capture", 1)
        return jobspec._with_options("alloc", kwargs)

    @classmethod
    def from_batch(cls, script: Any = None, *, content: str | None = None,
                   nslots: int | None = None, nodes: int | None = None,
                   cores_per_slot: int = 1, gpus_per_slot: int | None = None,
                   exclusive: bool = False, broker_opts: Sequence[str] | None = None,
                   conf: Any = None, wrap: bool = False, name: str | None = None,
                   queue: str | None = None, bank: str | None = None, cwd: Any = None,
                   output: Any = None, error: Any = None, input: Any = None,
                   label_io: bool = False, unbuffered: bool = False,
                   **kwargs: Any) -> "JobspecV1":
        """The jobspec ``flux batch`` builds: a nested instance running a batch
        script, then ``apply_options(prog="batch", **kwargs)``.

        Exactly one of ``script`` (a path; its file name is the default
        job name) and ``content`` (the script text; default name
        ``batch``) (TypeError otherwise).  A script without ``#!`` is a
        ValueError unless ``wrap`` prepends ``#!/bin/sh``.  ``nslots``
        defaults to 1 (to ``nodes`` whole nodes with ``nodes``), ``output``
        to ``flux-{{id}}.out``, ``cwd`` to the current directory.
        """
        from flux.job._utils import normalize_conf

        if script is not None and content is not None:
            raise TypeError("from_batch() accepts 'script' or 'content', not both")
        if script is None and content is None:
            raise TypeError("from_batch() requires 'script' (file path) or 'content' "
                            "(inline script)")
        if content is not None:
            if not isinstance(content, str):
                raise TypeError(f"content must be a string, not {type(content).__name__}")
            text = content
        else:
            if not isinstance(script, (str, os.PathLike)):
                raise TypeError(f"script must be a path, not {type(script).__name__}")
            path = os.fspath(script)
            if name is None:
                name = os.path.basename(path)
            with open(path, encoding="utf-8") as infile:
                text = infile.read()
        if wrap and not text.startswith("#!"):
            text = "#!/bin/sh\n" + text
        if nslots is None:
            if nodes is not None:
                nslots = nodes
                exclusive = True
            else:
                nslots = 1
        jobspec = cls.from_batch_command(text, name if name is not None else "batch",
                                         num_slots=nslots, cores_per_slot=cores_per_slot,
                                         gpus_per_slot=gpus_per_slot, num_nodes=nodes,
                                         broker_opts=broker_opts, exclusive=exclusive,
                                         conf=normalize_conf(conf),
                                         cwd=os.getcwd() if cwd is None else cwd,
                                         output="flux-{{id}}.out" if output is None else output,
                                         error=error, input=input, label_io=label_io,
                                         unbuffered=unbuffered, queue=queue, bank=bank)
        return jobspec._with_options("batch", kwargs)


def _namespace_items(args: Any) -> dict[str, Any]:
    """The option values of an argparse-like ``args`` (a namespace or a mapping)."""
    if args is None:
        return {}
    if isinstance(args, Mapping):
        return dict(args)
    try:
        return dict(vars(args))
    except TypeError:
        raise TypeError(f"args must be a namespace or a mapping, not "
                        f"{type(args).__name__}") from None


def _mapping_items(value: Any, name: str) -> Iterator[tuple[str, Any]]:
    if value is None:
        return iter(())
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, not {type(value).__name__}")
    return iter(list(value.items()))


def _command_list(command: Any, empty: bool = False) -> list[str]:
    if isinstance(command, (str, bytes)) or not isinstance(command, Sequence):
        raise TypeError("command must be a list of strings")
    command = list(command)
    if not command and not empty:
        raise TypeError("command array cannot have length of zero")
    if not all(isinstance(arg, str) for arg in command):
        raise TypeError("command must be a list of strings")
    return command


# --------------------------------------------------------------------------
# validation entry point

def nonfinite_error(text: str | bytes | bytearray) -> str | None:
    """Why TEXT is not JSON when all that is wrong is a NaN or Infinity (None otherwise).

    Python's json.dumps writes them, JSON has no such numbers, and the YAML
    fallback would read them as strings: say where the bad number is.
    """
    import json
    import math

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None

    def walk(node: Any, path: str) -> str | None:
        if isinstance(node, float) and not math.isfinite(node):
            return f"{path or 'jobspec'}: {node!r} is not a number JSON allows"
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            return None
        for key, value in items:
            where = f"{path}[{key}]" if isinstance(key, int) else \
                (f"{path}.{key}" if path else str(key))
            found = walk(value, where)
            if found:
                return found
        return None

    try:
        return walk(doc, "")
    except RecursionError:
        return None


def _is_timedelta(value: Any) -> bool:
    # without importing datetime (a short flux run never needs it): a
    # timedelta exists only if its module was imported
    datetime = sys.modules.get("datetime")
    return datetime is not None and isinstance(value, datetime.timedelta)


def _load_document(jobspec: Any) -> Any:
    if isinstance(jobspec, Jobspec):
        return jobspec.jobspec
    if isinstance(jobspec, Mapping):
        return jobspec
    if jobspec is None:
        raise EnvironmentError(errno.EINVAL, "jobspec must not be None/NULL")
    if not isinstance(jobspec, (str, bytes, bytearray)):
        raise TypeError("jobspec must be a Jobspec, a dict or a string (JSON or YAML)")
    import orjson

    try:
        return orjson.loads(jobspec)
    except orjson.JSONDecodeError as json_exc:
        bad_number = nonfinite_error(jobspec)
        if bad_number:
            raise ValueError(bad_number) from None
        import yaml

        try:
            return yaml.safe_load(jobspec)
        except yaml.YAMLError:
            raise ValueError(f"jobspec is not valid JSON or YAML: {json_exc}") from None


def validate_jobspec(jobspec: Any, require_version: int | None = None) -> bool:
    """Validate a jobspec; return True or raise naming the offending path.

    ``jobspec`` is a Jobspec, a dict, or a JSON or YAML string.  Version 1
    rules (RFC 25) apply when ``require_version`` is 1 or the document says
    ``version: 1``; otherwise the canonical RFC 14 rules.  Raises
    TypeError (wrong type), ValueError (bad value or unparsable text) or
    EnvironmentError (EINVAL, for None).
    """
    doc = _load_document(jobspec)
    _check_top_level(doc)
    if require_version == 1 or doc.get("version") == 1:
        _check_v1(doc)
    else:
        _check_canonical(doc)
    return True
