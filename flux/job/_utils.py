"""flux.job._utils: the option rules shared by ``Jobspec.apply_options`` and the CLI.

One implementation of each ``flux submit``/``flux run`` option rule, used by
the Python API (``JobspecV1.apply_options``, ``from_submit``, ...) and by
our own commands (``cli/submitopts.py``):

- ``get_filtered_environment(rules, environ=None)``: ``--env`` rules
  (``VAR=VAL``, ``PATTERN``, ``-PATTERN``, ``^FILE``) -> (environment,
  env-expand), a ``{{...}}`` value going to the shell's ``env-expand``;
- ``get_filtered_rlimits(rules=None)``: ``--rlimit`` rules over Flux's
  default set of propagated limits;
- ``decode_signal``, ``decode_duration``, ``parse_signal_option``
  (``--signal=[SIG][@TIME]``);
- ``parse_setattr``, ``parse_setopt`` (``--setattr``/``--setopt``);
- ``uri_entry`` (``--taskmap``), ``dependency_array_create``
  (``--dependency``), ``constraint_from_requires`` (``--requires``),
  ``jobspec_add_file`` (``--add-file``);
- ``BatchConfig`` and ``normalize_conf`` (``--conf`` of batch/alloc).

Rules and texts: ``specs/jobspec.md`` ("Options").
"""
from __future__ import annotations

import fnmatch
import os
import re
import resource
import signal
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "BatchConfig", "decode_signal", "decode_duration", "parse_signal_option",
    "get_filtered_environment", "get_filtered_rlimits", "parse_setattr", "parse_setopt",
    "parse_json_or_string", "uri_entry", "dependency_array_create",
    "constraint_from_requires", "jobspec_add_file", "normalize_conf", "list_split",
]

#: rlimits Flux does not propagate unless asked (``--rlimit=NAME``)
DEFAULT_RLIMIT_RULES = ("-memlock", "-ofile", "-msgqueue", "-nice", "-rtprio", "-rttime",
                        "-sigpending")
#: how deep ``^FILE`` env rules may nest (a file naming itself would loop)
_MAX_ENV_DEPTH = 16


# --------------------------------------------------------------------------
# signals and durations

def decode_signal(val: Any) -> int:
    """A signal number from ``10``, ``"10"``, ``"SIGUSR1"`` or ``"USR1"``; ValueError otherwise."""
    if isinstance(val, int) and not isinstance(val, bool):
        return val
    if isinstance(val, str):
        text = val.strip()
        try:
            return int(text)
        except ValueError:
            pass
        name = text.upper()
        for candidate in (name, "SIG" + name):
            member = signal.Signals.__members__.get(candidate)
            if member is not None:
                return int(member)
    raise ValueError(f"signal '{val}' is invalid")


def decode_duration(val: Any) -> float:
    """Seconds from a number, a numeric string or an RFC 23 duration (``"1.5m"``)."""
    from flux.util.fsd import parse_fsd

    if isinstance(val, (int, float)) and not isinstance(val, bool):
        return float(val)
    if isinstance(val, str):
        try:
            return float(val)
        except ValueError:
            pass
    return parse_fsd(val)


def parse_signal_option(arg: str | None) -> dict[str, Any]:
    """``--signal=[SIG][@TIME]`` -> ``{"signum", "timeleft"}`` (default SIGUSR1 at 60 s)."""
    sig: Any = int(signal.SIGUSR1)
    when: Any = 60
    if arg is not None:
        if not isinstance(arg, str):
            raise TypeError(f"signal must be a string [SIG][@TIME], not {type(arg).__name__}")
        name, _at, tleft = arg.partition("@")
        if name:
            sig = name
        if tleft:
            when = tleft
    try:
        signum = decode_signal(sig)
        if not 0 < signum < signal.NSIG:
            raise ValueError(f"signal '{sig}' is invalid")
    except ValueError as exc:
        raise ValueError(f"--signal={arg}: {exc}") from None
    try:
        timeleft = decode_duration(when)
    except ValueError as exc:
        raise ValueError(f"--signal={arg}: {exc}") from None
    return {"signum": signum, "timeleft": timeleft}


# --------------------------------------------------------------------------
# environment rules

def _env_pattern(pattern: str, rule: str) -> Callable[[str], bool]:
    """``/regex/`` (unanchored search) or a shell glob."""
    if pattern.startswith("/"):
        body = pattern[1:-1] if len(pattern) > 1 and pattern.endswith("/") else pattern[1:]
        try:
            regex = re.compile(body)
        except re.error as exc:
            raise ValueError(f"env rule '{rule}': invalid regex '{body}': {exc}") from None
        return lambda name: regex.search(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, pattern)


def _read_rule_file(path: str, rule: str) -> list[str]:
    full = os.path.expanduser(path)
    try:
        with open(full, encoding="utf-8") as infile:
            lines = infile.read().splitlines()
    except OSError as exc:
        raise ValueError(f"env rule '{rule}': cannot read {full}: "
                         f"{exc.strerror or exc}") from None
    return [line.strip() for line in lines
            if line.strip() and not line.lstrip().startswith("#")]


def _apply_env_rules(rules: Iterable[str], environ: Mapping[str, str], env: dict[str, str],
                     expand: dict[str, str], depth: int) -> None:
    if depth > _MAX_ENV_DEPTH:
        raise ValueError(f"env rules: ^FILE nested more than {_MAX_ENV_DEPTH} deep")
    for rule in rules:
        if not isinstance(rule, str):
            raise TypeError(f"env rule must be a string, not {type(rule).__name__}")
        if not rule:
            continue
        if rule.startswith("-"):
            match = _env_pattern(rule[1:], rule)
            for name in [n for n in env if match(n)]:
                del env[name]
        elif rule.startswith("^"):
            _apply_env_rules(_read_rule_file(rule[1:], rule), environ, env, expand, depth + 1)
        elif "=" in rule and not rule.startswith("/"):
            name, _, value = rule.partition("=")
            if not name:
                raise ValueError(f"env rule '{rule}': empty variable name")
            if "{{" in value:
                # a mustache template: the job shell expands it for each task
                expand[name] = value
                continue
            # flux-core's texts (flux.job._utils)
            try:
                env[name] = string.Template(value).substitute({**environ, **env})
            except KeyError as exc:
                raise ValueError(f"--env: Variable {exc} not found in {rule}") from None
            except ValueError:
                raise ValueError(f"--env: Unable to substitute {rule}") from None
        else:
            match = _env_pattern(rule, rule)
            for name, value in environ.items():
                if name not in env and match(name):
                    env[name] = value


def get_filtered_environment(rules: Iterable[str] | str | None,
                             environ: Mapping[str, str] | None = None
                             ) -> tuple[dict[str, str], dict[str, str]]:
    """The job environment and its ``env-expand`` templates for env RULES.

    Starts from a copy of ENVIRON (default ``os.environ``) and applies the
    rules in order: ``-PATTERN`` removes matching variables (``/regex/``
    or a glob), ``^FILE`` applies the rules in FILE (one per line, ``#``
    comments), ``VAR=VAL`` sets VAR after ``$var``/``${var}`` substitution
    from the environment built so far, then ENVIRON (an unset variable is
    an error), unless VAL holds a ``{{...}}`` template, which goes to
    env-expand for the shell to expand; any other rule is a pattern of
    ENVIRON variables to copy when not already set.
    """
    source = os.environ if environ is None else environ
    env = dict(source)
    expand: dict[str, str] = {}
    if rules is None:
        return env, expand
    if isinstance(rules, str):
        rules = [rules]
    _apply_env_rules(rules, source, env, expand, 0)
    return env, expand


# --------------------------------------------------------------------------
# rlimit rules

def list_split(opts: Iterable[str] | str | None) -> list[str]:
    """Every member of OPTS split on commas (a bare string is one member)."""
    if opts is None:
        return []
    if isinstance(opts, str):
        opts = [opts]
    return [item.strip() for opt in opts for item in str(opt).split(",") if item.strip()]


def _rlimit_names() -> list[str]:
    return sorted(n[len("RLIMIT_"):].lower() for n in dir(resource) if n.startswith("RLIMIT_"))


def _soft_limit(name: str) -> int:
    soft, _hard = resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))
    return -1 if soft == resource.RLIM_INFINITY else soft


def get_filtered_rlimits(rules: Iterable[str] | str | None = None) -> dict[str, int]:
    """The ``rlimit`` shell option: our soft limits, filtered by RULES.

    Flux propagates every limit except memlock, ofile, msgqueue, nice,
    rtprio, rttime and sigpending; RULES (comma-separated lists allowed)
    then apply in order: ``NAME`` (a glob, ``*`` for all) copies our soft
    limit, ``NAME=VALUE`` sets one (``unlimited``/``infinity``/``inf`` =
    -1), ``-NAME`` (a glob) stops propagating it.  Names are the RLIMIT_*
    names without the prefix, any case.
    """
    names = _rlimit_names()
    out = {name: _soft_limit(name) for name in names}
    for rule in [*DEFAULT_RLIMIT_RULES, *list_split(rules)]:
        if rule.startswith("-"):
            pattern = rule[1:].lower()
            for name in [n for n in out if fnmatch.fnmatchcase(n, pattern)]:
                del out[name]
            continue
        name, eq, value = rule.partition("=")
        name = name.lower()
        if not eq:
            matched = [n for n in names if fnmatch.fnmatchcase(n, name)]
            if not matched:
                raise ValueError(f"--rlimit: unknown resource limit '{name}'")
            out.update({n: _soft_limit(n) for n in matched})
            continue
        if name not in names:
            raise ValueError(f"--rlimit: unknown resource limit '{name}'")
        if value.lower() in ("unlimited", "infinity", "inf"):
            out[name] = -1
            continue
        try:
            out[name] = int(value)
        except ValueError:
            raise ValueError(f"--rlimit: invalid value '{value}' for {name}") from None
    return out


# --------------------------------------------------------------------------
# --setattr / --setopt

def parse_json_or_string(text: str) -> Any:
    """VAL of --setattr/--setopt: JSON if it parses, else the string itself."""
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def parse_setattr(arg: str) -> tuple[str, Any]:
    """``KEY=VAL`` -> (KEY, value); ``^KEY=FILE`` reads the value (JSON) from FILE."""
    key, sep, text = arg.partition("=")
    if not sep:
        raise ValueError(f"--setattr: missing value for attribute '{arg}' (use KEY=VAL)")
    if not key or key == "^":
        raise ValueError(f"--setattr: empty attribute name in '{arg}'")
    if key.startswith("^"):
        import orjson

        key = key[1:]
        path = os.path.expanduser(text)
        try:
            with open(path, "rb") as infile:
                data = infile.read()
        except OSError as exc:
            raise ValueError(f"--setattr: {key}: cannot read {path}: "
                             f"{exc.strerror or exc}") from None
        try:
            return key, orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"--setattr: {key}: {path} is not valid JSON: {exc}") from None
    return key, parse_json_or_string(text)


def parse_setopt(arg: str) -> tuple[str, Any]:
    """``KEY[=VAL]`` -> (KEY, value); a bare KEY sets the value 1."""
    key, sep, text = arg.partition("=")
    if not key:
        raise ValueError(f"--setopt: empty option name in '{arg}'")
    return key, parse_json_or_string(text) if sep else 1


def attribute_key(key: str) -> str:
    """An ``attributes`` dict / ``--setattr`` key as a full dotted key.

    No prefix means ``system.``; a leading ``.`` addresses ``attributes.``
    itself (``.user.x`` -> ``attributes.user.x``).
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"attribute key must be a non-empty string, not {key!r}")
    if key.startswith("."):
        return "attributes" + key
    if key.startswith("attributes."):
        return key
    if key.startswith(("system.", "user.")):
        return "attributes." + key
    return "attributes.system." + key


# --------------------------------------------------------------------------
# URIs, dependencies, constraints

def _number_or_string(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            continue
    return text


def uri_entry(uri: str, name: str) -> dict[str, Any]:
    """``SCHEME[:VALUE][?k=v&...]`` -> ``{"scheme", "value", k: v...}`` (``--taskmap``)."""
    from urllib.parse import parse_qs

    if not isinstance(uri, str):
        raise TypeError(f"{name} must be a string, not {type(uri).__name__}")
    scheme, _sep, rest = uri.partition(":")
    value, _q, query = rest.partition("?")
    if not scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise ValueError(f'Invalid {name} URI "{uri}"')
    entry: dict[str, Any] = {"scheme": scheme, "value": value}
    for key, vals in parse_qs(query).items():
        entry[key] = ([_number_or_string(v) for v in vals] if len(vals) > 1
                      else _number_or_string(vals[0]))
    return entry


def dependency_array_create(uris: Iterable[str] | str) -> list[dict[str, Any]]:
    """RFC 26 objects for ``--dependency`` URIs (a bare string is one URI)."""
    from flux.job.dependency import parse_dependency

    if isinstance(uris, str):
        uris = [uris]
    return [parse_dependency(uri) for uri in uris]


def constraint_from_requires(requires: Iterable[str] | str) -> dict[str, Any]:
    """RFC 31 constraint of ``--requires`` expressions (RFC 35, ANDed together).

    Bare terms are properties (``ssd,bigmem``), ``host:``/``hosts:`` a
    hostlist, ``rank:``/``ranks:`` an idset.  ValueError on bad syntax.
    """
    from flux.constraint.parser import ConstraintParser, ConstraintSyntaxError

    class RequiresParser(ConstraintParser):
        operator_map = {None: "properties", "host": "hostlist", "hosts": "hostlist",
                        "rank": "ranks", "ranks": "ranks"}
        split_values = {"properties": ","}
        combined_terms = {"properties"}

    if isinstance(requires, str):
        requires = [requires]
    query = " ".join(requires)
    try:
        return RequiresParser().parse(query)
    except ConstraintSyntaxError as exc:
        raise ValueError(f"--requires='{query}': {exc}") from None


# --------------------------------------------------------------------------
# --add-file

def jobspec_add_file(jobspec: Any, arg: str) -> None:
    """Attach one ``--add-file`` ARG: ``PATH``, ``NAME=PATH``, ``NAME=DATA`` or ``NAME:PERMS=...``.

    DATA is content when it holds a newline (a literal ``\\n`` counts);
    PERMS is octal.  ValueError names the argument.
    """
    if not isinstance(arg, str):
        raise TypeError(f"add_file entries must be strings, not {type(arg).__name__}")
    perms = None
    name, _eq, data = arg.replace("\\n", "\n").partition("=")
    if not data:
        if "\n" in name:
            raise ValueError(f"--add-file={arg}: file name missing")
        data = name
        name = os.path.basename(data)
    else:
        base, colon, permstr = name.partition(":")
        if colon:
            try:
                perms = int(permstr, 8)
                name = base
            except ValueError:
                pass  # the ':' is part of the name
    try:
        jobspec.add_file(name, data, perms=perms)
    except (TypeError, ValueError, OSError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"--add-file={arg}: {text}") from None


# --------------------------------------------------------------------------
# broker configuration for batch / alloc

def _merge(base: dict[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base or {})
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _xdg_config_dirs() -> list[str]:
    """``$XDG_CONFIG_HOME/flux/config`` then each ``$XDG_CONFIG_DIRS/flux/config``."""
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [os.path.join(d, "flux", "config") for d in [home, *dirs.split(":")] if d]


def _load(path: str, fmt: str) -> Any:
    with open(path, "rb") as infile:
        data = infile.read()
    if fmt == ".json":
        import json

        return json.loads(data)
    import tomli as tomllib  # TOML 1.1 (tomllib before 3.15 is 1.0)

    return tomllib.loads(data.decode("utf-8"))


def _load_errors() -> tuple[type[BaseException], ...]:
    import json
    import tomli as tomllib  # TOML 1.1 (tomllib before 3.15 is 1.0)

    return (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError)


class BatchConfig:
    """A broker config built from successive ``--conf`` values (``update``).

    ``update(value)`` merges VALUE into ``config`` and returns self: text
    with a newline is JSON or TOML; ``a.b=VAL`` sets a dotted key (VAL as
    JSON, else a string); a path ending in ``.toml``/``.json`` is loaded;
    anything else names a config ``NAME.toml``/``NAME.json`` in the XDG
    ``flux/config`` directories.  ValueError names what could not be used.
    """

    def __init__(self) -> None:
        self.config: dict[str, Any] | None = None

    def update_string(self, value: str) -> "BatchConfig":
        import json
        import tomli as tomllib  # TOML 1.1 (tomllib before 3.15 is 1.0)

        try:
            conf = json.loads(value)
        except json.JSONDecodeError:
            try:
                conf = tomllib.loads(value)
            except tomllib.TOMLDecodeError:
                raise ValueError("--conf: failed to parse multiline as TOML or JSON") from None
        if not isinstance(conf, Mapping):
            raise ValueError("--conf: configuration must be a JSON object or TOML table")
        self.config = _merge(self.config, conf)
        return self

    def update_keyval(self, keyval: str) -> "BatchConfig":
        key, _eq, text = keyval.partition("=")
        parts = key.split(".")
        if not all(parts):
            raise ValueError(f"--conf: invalid key '{key}'")
        value = parse_json_or_string(text)
        node = self.config if self.config is not None else {}
        self.config = node
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TypeError(f"failed to set {key} to {value!r}: "
                                f"{'.'.join(parts[:depth + 1])} is not a table")
            node = child
        node[parts[-1]] = value
        return self

    def update_file(self, path: str, extension: str = ".toml") -> "BatchConfig":
        if extension not in (".toml", ".json"):
            raise ValueError(f"--conf: {path} must end in .toml or .json")
        try:
            conf = _load(path, extension)
        except OSError as exc:
            raise ValueError(f"--conf: {path}: {exc.strerror or exc}") from None
        except _load_errors() as exc:
            raise ValueError(f"--conf: parse error: {path}: {exc}") from None
        if not isinstance(conf, Mapping):
            raise ValueError(f"--conf: {path}: not a JSON object or TOML table")
        self.config = _merge(self.config, conf)
        return self

    def update_named_config(self, name: str) -> "BatchConfig":
        for directory in _xdg_config_dirs():
            for ext in (".toml", ".json"):
                filename = os.path.join(directory, name + ext)
                if not os.path.exists(filename):
                    continue
                try:
                    conf = _load(filename, ext)
                except _load_errors() as exc:
                    raise ValueError(f"--conf={name}: {filename}: {exc}") from None
                if not isinstance(conf, Mapping):
                    raise ValueError(f"--conf={name}: {filename}: not a JSON object or "
                                     "TOML table")
                self.config = _merge(self.config, conf)
                return self
        raise ValueError(f"--conf: named config '{name}' not found")

    def update(self, value: str) -> "BatchConfig":
        """Merge VALUE (see the class docstring) into ``config``; returns self."""
        if not isinstance(value, str):
            raise TypeError(f"--conf value must be a string, not {type(value).__name__}")
        if self.config is None:
            self.config = {}
        if "\n" in value:
            return self.update_string(value)
        if "=" in value:
            return self.update_keyval(value)
        extension = os.path.splitext(value)[1]
        if extension in (".toml", ".json"):
            return self.update_file(value, extension)
        return self.update_named_config(value)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at dotted KEY, or DEFAULT if any level is missing."""
        node: Any = self.config or {}
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def normalize_conf(conf: Any) -> dict[str, Any] | None:
    """``conf=`` of from_alloc/from_batch as a dict: a dict, a BatchConfig, or BatchConfig text."""
    if conf is None:
        return None
    if isinstance(conf, Mapping):
        return dict(conf)
    if isinstance(conf, BatchConfig):
        return conf.config if conf.config is not None else {}
    if isinstance(conf, str):
        return BatchConfig().update(conf).config
    if isinstance(conf, Sequence):
        batch = BatchConfig()
        for item in conf:
            batch.update(item)
        return batch.config
    raise TypeError(f"conf must be a dict, BatchConfig or string, not {type(conf).__name__}")
