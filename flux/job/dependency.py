"""RFC 26 job dependencies: ``scheme:value[?key=val&key=val]`` URIs <-> objects.

A dependency is a JSON object ``{"scheme": str, "value": str, ...}``
appended to jobspec ``attributes.system.dependencies``.  The URI form is
what ``--dependency=URI`` takes on the command line.  ``value`` stays the
string the user wrote (RFC 26 says it is a string, and Flux's job-manager
plugins parse it); :func:`dependency_jobid` and :func:`begin_time` give
its meaning for the built-in schemes.  See ``specs/dependencies.md``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "AFTER_SCHEMES",
    "BUILTIN_SCHEMES",
    "parse_dependency",
    "dependency_array_create",
    "format_dependency",
    "validate_dependency",
    "check_dependency",
    "dependency_jobid",
    "begin_time",
]

#: Schemes whose value is the antecedent job id, in any RFC 19 encoding.
AFTER_SCHEMES = frozenset({"after", "afterstart", "afterany", "afterok", "afternotok"})
#: Schemes with a built-in meaning (``string``/``fluid`` are reserved by RFC 26).
BUILTIN_SCHEMES = AFTER_SCHEMES | {"begin-time"}

# RFC 3986 scheme syntax
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_INT = re.compile(r"-?\d+\Z")
_FLOAT = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?\Z")
_QUERY_SPLIT = re.compile(r"[&;]")


def _bad(uri: str, reason: str) -> ValueError:
    return ValueError(f"invalid dependency URI '{uri}': {reason}")


def _query_value(text: str) -> int | float | str:
    """Numbers become int or float (finite only); anything else stays a string."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        value = float(text)
        if math.isfinite(value):
            return value
    return text


def parse_dependency(uri: str) -> dict[str, Any]:
    """Convert one dependency URI into its RFC 26 object.

    ``"afterok:ƒ2oLkTLb"`` -> ``{"scheme": "afterok", "value": "ƒ2oLkTLb"}``;
    ``"string:foo?type=out&scope=user"`` adds ``"type"`` and ``"scope"``.
    The scheme is lower-cased; query keys and values are percent-decoded;
    query values that are numbers become int or float; a key given twice
    becomes a list.  Raises ValueError naming the URI and the problem.
    """
    if not isinstance(uri, str):
        raise TypeError(f"dependency URI must be a string, not {type(uri).__name__}")
    scheme, sep, rest = uri.partition(":")
    if not sep:
        raise _bad(uri, "missing ':' between scheme and value")
    if not scheme:
        raise _bad(uri, "empty scheme")
    if not _SCHEME.match(scheme):
        raise _bad(uri, f"scheme '{scheme}' must be a letter followed by letters, "
                        "digits, '+', '-' or '.'")
    value, qmark, query = rest.partition("?")
    if not value:
        raise _bad(uri, "empty value")
    entry: dict[str, Any] = {"scheme": scheme.lower(), "value": value}
    if qmark:
        from urllib.parse import unquote_plus

        for item in _QUERY_SPLIT.split(query):
            if not item:
                continue
            key, eq, text = item.partition("=")
            key = unquote_plus(key)
            if not eq or not key:
                raise _bad(uri, f"query item '{item}' is not key=value")
            if key in ("scheme", "value"):
                raise _bad(uri, f"query key '{key}' would replace the dependency {key}")
            val = _query_value(unquote_plus(text))
            if key not in entry:
                entry[key] = val
            elif isinstance(entry[key], list):
                entry[key].append(val)
            else:
                entry[key] = [entry[key], val]
    return entry


def dependency_array_create(uris: Iterable[str]) -> list[dict[str, Any]]:
    """Parse several URIs (``--dependency`` given more than once), in order."""
    return [parse_dependency(uri) for uri in uris]


def format_dependency(dep: Mapping[str, Any]) -> str:
    """Write a dependency object back as a URI (inverse of parse_dependency).

    A list value becomes a repeated key.  A string option that looks like a
    number would read back as a number; that is the URI form's limit.
    """
    from urllib.parse import quote_plus

    validate_dependency(dep)
    if "?" in dep["value"]:
        raise ValueError(f"dependency value '{dep['value']}' contains '?', "
                         "which the URI form cannot express")
    parts = []
    for key, val in dep.items():
        if key in ("scheme", "value"):
            continue
        for item in val if isinstance(val, list) else [val]:
            text = item if isinstance(item, str) else _number_text(key, item)
            parts.append(f"{quote_plus(key)}={quote_plus(text)}")
    uri = f"{dep['scheme']}:{dep['value']}"
    return f"{uri}?{'&'.join(parts)}" if parts else uri


def _number_text(key: str, item: Any) -> str:
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        raise TypeError(f"dependency option '{key}' must be a string or number, not {item!r}")
    return repr(item)


def validate_dependency(dep: Any, path: str = "dependency") -> None:
    """Check the RFC 26 shape: an object with string ``scheme`` and ``value``.

    This is what jobspec validation requires; what a value means is left
    to the scheme (see :func:`check_dependency`).  Errors name ``path``.
    """
    if not isinstance(dep, Mapping):
        raise TypeError(f"{path}: must be an object, not {type(dep).__name__}")
    for key in ("scheme", "value"):
        if key not in dep:
            raise ValueError(f"{path}: missing required key '{key}'")
        if not isinstance(dep[key], str):
            raise TypeError(f"{path}.{key}: must be a string, not {type(dep[key]).__name__}")
        if not dep[key]:
            raise ValueError(f"{path}.{key}: must not be empty")


def dependency_jobid(dep: Mapping[str, Any]) -> int:
    """Return the antecedent job id of an ``after*`` dependency as a JobID."""
    validate_dependency(dep)
    if dep["scheme"] not in AFTER_SCHEMES:
        raise ValueError(f"dependency scheme '{dep['scheme']}' does not name a job")
    from flux.job.JobID import JobID

    try:
        return JobID(dep["value"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{dep['scheme']}:{dep['value']}: invalid job id: {exc}") from None


def begin_time(dep: Mapping[str, Any]) -> float:
    """Return the epoch time of a ``begin-time`` dependency as a float.

    The value must be a finite decimal number >= 0 written as a string,
    the form flux-core's begin-time plugin accepts.
    """
    validate_dependency(dep)
    if dep["scheme"] != "begin-time":
        raise ValueError(f"dependency scheme '{dep['scheme']}' is not begin-time")
    text = dep["value"]
    if not _FLOAT.match(text) or text.startswith("-"):
        raise ValueError(f"begin-time:{text}: value must be a timestamp in seconds >= 0")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"begin-time:{text}: value must be a finite timestamp")
    return value


def check_dependency(dep: Mapping[str, Any], path: str = "dependency") -> None:
    """Validate the shape and, for built-in schemes, the value.

    ``after*`` values must parse as a job id (checked with
    ``flux.job.JobID`` when that module is installed, otherwise deferred
    to the job manager); ``begin-time`` values must be a timestamp.
    Other schemes are accepted as they are: plugins define them.
    """
    validate_dependency(dep, path)
    scheme = dep["scheme"]
    try:
        if scheme in AFTER_SCHEMES:
            try:
                dependency_jobid(dep)
            except ModuleNotFoundError as exc:
                if exc.name != "flux.job.JobID":
                    raise
                return
        elif scheme == "begin-time":
            begin_time(dep)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
