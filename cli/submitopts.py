"""Options shared by ``flux submit`` and ``flux run``, and the jobspec they build.

The click options are attached with :func:`submission_options`; the
functions below turn their values into a JobspecV1 (flux-mini(1) rules,
our statement in ``specs/cli-jobs.md``):

- ``--env``/``--env-remove``/``--env-file`` rules apply in command-line
  order over a copy of the environment (:func:`apply_env_rules`);
- ``--setattr KEY=VAL`` / ``--setopt KEY[=VAL]``: VAL is JSON when it
  parses, else a string (``^FILE`` for setattr reads JSON from FILE);
- ``--urgency`` takes 0-31 or hold/default/expedite;
- ``--cc``/``--bcc`` replicate the job, substituting ``{cc}``.

Everything here is pure apart from reading files named by the user.
"""
from __future__ import annotations

import fnmatch
import os
import re
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

__all__ = [
    "URGENCY_NAMES", "SUBMIT_FLAGS", "OrderedCommand", "submission_options", "SubmitArgs",
    "parse_urgency", "parse_setattr", "parse_setopt", "parse_json_or_string",
    "apply_env_rules", "env_rule_list", "parse_begin_time", "parse_flags",
    "check_output_template", "build_jobspec", "substitute_cc", "ENV_RULE_OPTIONS",
    "parse_signal", "apply_rlimit_rules",
]

URGENCY_NAMES = {"hold": 0, "default": 16, "expedite": 31}
#: --flags names -> flux-core submit flag bits
SUBMIT_FLAGS = {"debug": 2, "waitable": 4, "novalidate": 8}
#: the options whose values, in command-line order, make the env rule list
ENV_RULE_OPTIONS = {"env": "", "env_remove": "-", "env_file": "^"}
_TEMPLATE_TAG = re.compile(r"\{\{\s*(id|jobid)(?:\.([A-Za-z0-9]+))?\s*\}\}")
_ID_ENCODINGS = ("dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji")


# --------------------------------------------------------------------------
# click plumbing: keep the command-line order of repeated options

class OrderedCommand(click.Command):
    """A click Command that remembers the order options appeared in.

    ``ctx.meta["param_order"]`` lists parameter names, one per occurrence,
    in command-line order, so rules spread over several options
    (``--env``, ``--env-remove``, ``--env-file``) can be applied in the
    order the user wrote them.
    """

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse_args = parser.parse_args

        def recording_parse_args(args: list[str]) -> Any:
            opts, largs, order = parse_args(args)
            ctx.meta["param_order"] = [param.name for param in order]
            return opts, largs, order

        parser.parse_args = recording_parse_args  # type: ignore[method-assign]
        return parser


def env_rule_list(ctx: click.Context) -> list[str]:
    """The --env* option values as env rules, in command-line order."""
    values = {name: list(ctx.params.get(name) or ()) for name in ENV_RULE_OPTIONS}
    rules: list[str] = []
    for name in ctx.meta.get("param_order", []):
        if name in values and values[name]:
            rules.append(ENV_RULE_OPTIONS[name] + values[name].pop(0))
    # values the order list did not account for (should not happen) keep option order
    for name, rest in values.items():
        rules.extend(ENV_RULE_OPTIONS[name] + v for v in rest)
    return rules


def _urgency_callback(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_urgency(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def submission_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Attach the job-request options of ``flux submit`` and ``flux run``."""
    options = [
        click.option("-n", "--ntasks", type=click.IntRange(min=1), default=None,
                     help="Number of tasks to start (default: 1, or one per node with -N)"),
        click.option("-c", "--cores-per-task", type=click.IntRange(min=1), default=1,
                     show_default=True, help="Number of cores to allocate per task"),
        click.option("-g", "--gpus-per-task", type=click.IntRange(min=0), default=None,
                     help="Number of GPUs to allocate per task"),
        click.option("-N", "--nodes", type=click.IntRange(min=1), default=None,
                     help="Distribute tasks over N nodes"),
        click.option("-x", "--exclusive", is_flag=True,
                     help="With -N, allocate whole nodes"),
        click.option("-t", "--time-limit", metavar="FSD", default=None,
                     help="Time limit in Flux standard duration, e.g. 10s, 2m, 1.5h"),
        click.option("--urgency", metavar="N", default="16", callback=_urgency_callback,
                     help="Urgency 0-31, or hold, default, expedite"),
        click.option("--job-name", metavar="NAME", default=None, help="Set the job name"),
        click.option("-q", "--queue", metavar="NAME", default=None, help="Submit to queue NAME"),
        click.option("--cwd", metavar="DIR", default=None,
                     help="Working directory of the job (default: the current one)"),
        click.option("--dependency", metavar="URI", multiple=True,
                     help="RFC 26 dependency, e.g. afterok:JOBID (repeatable)"),
        click.option("--begin-time", metavar="+FSD|DATETIME", default=None,
                     help="Do not start the job before this time"),
        click.option("--env", metavar="RULE", multiple=True,
                     help="Environment rule: VAR=VAL, PATTERN, -PATTERN, ^FILE"),
        click.option("--env-remove", metavar="PATTERN", multiple=True,
                     help="Remove variables matching PATTERN (glob or /regex/)"),
        click.option("--env-file", metavar="FILE", multiple=True,
                     help="Read environment rules from FILE"),
        click.option("-S", "--setattr", "setattrs", metavar="KEY=VAL", multiple=True,
                     help="Set jobspec attribute KEY (VAL is JSON or a string; ^KEY=FILE)"),
        click.option("-o", "--setopt", "setopts", metavar="KEY[=VAL]", multiple=True,
                     help="Set shell option KEY (default value 1)"),
        click.option("--output", metavar="TEMPLATE", default=None,
                     help="Write stdout to TEMPLATE ({{id}} expands to the job id)"),
        click.option("--error", metavar="TEMPLATE", default=None,
                     help="Write stderr to TEMPLATE"),
        click.option("--input", "input_", metavar="FILE", default=None,
                     help="Read stdin of the job from FILE"),
        click.option("-l", "--label-io", is_flag=True, help="Label output lines with the task rank"),
        click.option("-u", "--unbuffered", is_flag=True,
                     help="Send output as it comes, not line by line in batches"),
        click.option("--signal", "signal_", metavar="SIG@TIME", default=None,
                     help="Send SIG to the job TIME before its time limit (default USR1@60)"),
        click.option("--rlimit", "rlimits", metavar="RULE", multiple=True,
                     help="Give the job our soft limit NAME, NAME=VALUE, all (*), or "
                          "remove it (-NAME, -*)"),
        click.option("--flags", "flag_names", metavar="FLAGS", default=None,
                     help="Comma-separated submit flags: debug, waitable, novalidate"),
        click.option("--debug", is_flag=True, help="Enable job debug events"),
        click.option("--dry-run", is_flag=True, help="Print the jobspec instead of submitting"),
        click.option("-v", "--verbose", count=True, help="Increase verbosity on stderr"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# --------------------------------------------------------------------------
# option value parsers

def parse_urgency(text: str | int) -> int:
    """``"hold"`` -> 0, ``"default"`` -> 16, ``"expedite"`` -> 31, ``"7"`` -> 7.

    Range checks (0-31, guests 0-16) are the job manager's; this only
    refuses text that is neither a name nor an integer.
    """
    if isinstance(text, int):
        return text
    value = URGENCY_NAMES.get(text.strip().lower())
    if value is not None:
        return value
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"invalid urgency '{text}': expected 0-31, hold, default "
                         "or expedite") from None


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


def parse_flags(text: str | None) -> int:
    """``"waitable,debug"`` -> the submit flag bits; unknown names are refused."""
    bits = 0
    if not text:
        return bits
    for name in text.split(","):
        name = name.strip()
        if not name:
            continue
        if name not in SUBMIT_FLAGS:
            raise ValueError(f"--flags: unknown flag '{name}' "
                             f"(expected {', '.join(SUBMIT_FLAGS)})")
        bits |= SUBMIT_FLAGS[name]
    return bits


def parse_begin_time(text: str, now: float | None = None) -> float:
    """``--begin-time``: ``+FSD`` (from now), epoch seconds, or an ISO 8601 date/time.

    A time of day alone (``HH:MM[:SS]``) means the next time the clock
    shows it.  Returns epoch seconds.
    """
    from datetime import datetime, timedelta

    from flux.util.fsd import parse_fsd

    now = time.time() if now is None else now
    text = text.strip()
    if text.startswith("+"):
        try:
            return now + parse_fsd(text[1:])
        except ValueError:
            raise ValueError(f"--begin-time: invalid duration '{text[1:]}'") from None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"--begin-time: invalid timestamp '{text}'")
        return value
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
    if match:
        hour, minute, second = (int(g) if g else 0 for g in match.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"--begin-time: invalid time of day '{text}'")
        base = datetime.fromtimestamp(now)
        when = base.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if when.timestamp() <= now:
            when += timedelta(days=1)
        return when.timestamp()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--begin-time: cannot parse '{text}' (expected +FSD, "
                         "epoch seconds, HH:MM or an ISO 8601 date and time)") from None
    return when.timestamp()


def check_output_template(template: str, option: str) -> None:
    """Refuse ``{{id.X}}`` with an unknown encoding X (the shell expands the rest)."""
    for match in _TEMPLATE_TAG.finditer(template):
        encoding = match.group(2)
        if encoding is not None and encoding not in _ID_ENCODINGS:
            raise ValueError(f"{option}: unknown job id encoding '{encoding}' in "
                             f"'{match.group(0)}' (expected one of {', '.join(_ID_ENCODINGS)})")


# --------------------------------------------------------------------------
# environment rules

def _env_pattern(pattern: str, rule: str) -> Callable[[str], bool]:
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


def apply_env_rules(rules: Iterable[str], environ: Mapping[str, str],
                    _depth: int = 0, env: dict[str, str] | None = None) -> dict[str, str]:
    """The job environment: ENVIRON copied, then RULES applied in order.

    ``-PATTERN`` removes matching variables (``/regex/`` or a glob),
    ``^FILE`` applies the rules in FILE (one per line), ``VAR=VAL`` sets
    VAR after ``$var``/``${var}`` substitution from the environment built
    so far, then ENVIRON (an unset variable is an error), and any other
    rule is a pattern of ENVIRON variables to copy if not already set.
    """
    if env is None:
        env = dict(environ)
    if _depth > 16:
        raise ValueError("env rules: ^FILE nested more than 16 deep")
    for rule in rules:
        if not rule:
            continue
        if rule.startswith("-"):
            match = _env_pattern(rule[1:], rule)
            for name in [n for n in env if match(n)]:
                del env[name]
        elif rule.startswith("^"):
            apply_env_rules(_read_rule_file(rule[1:], rule), environ, _depth + 1, env)
        elif "=" in rule and not rule.startswith("/"):
            name, _, value = rule.partition("=")
            if not name:
                raise ValueError(f"env rule '{rule}': empty variable name")
            mapping = {**environ, **env}
            try:
                env[name] = string.Template(value).substitute(mapping)
            except KeyError as exc:
                raise ValueError(f"env rule '{rule}': variable {exc.args[0]} is not set") from None
            except ValueError as exc:
                raise ValueError(f"env rule '{rule}': {exc}") from None
        else:
            match = _env_pattern(rule, rule)
            for name, value in environ.items():
                if name not in env and match(name):
                    env[name] = value
    return env


# --------------------------------------------------------------------------
# the jobspec

@dataclass(slots=True)
class SubmitArgs:
    """The job-request options of one ``flux submit``/``flux run`` invocation."""

    command: list[str]
    ntasks: int = 1
    cores_per_task: int = 1
    gpus_per_task: int | None = None
    nodes: int | None = None
    exclusive: bool = False
    time_limit: str | None = None
    urgency: int = 16
    job_name: str | None = None
    queue: str | None = None
    cwd: str | None = None
    dependency: Sequence[str] = ()
    begin_time: str | None = None
    env_rules: Sequence[str] = ()
    setattrs: Sequence[str] = ()
    setopts: Sequence[str] = ()
    output: str | None = None
    error: str | None = None
    input: str | None = None
    label_io: bool = False
    flags: int = 0
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    unbuffered: bool = False
    signal: str | None = None
    rlimits: Sequence[str] = ()

    @classmethod
    def from_click(cls, ctx: click.Context, command: Sequence[str]) -> "SubmitArgs":
        """Collect the values :func:`submission_options` gave CTX."""
        p = ctx.params
        flags = parse_flags(p.get("flag_names"))
        if p.get("debug"):
            flags |= SUBMIT_FLAGS["debug"]
        ntasks = p["ntasks"] if p["ntasks"] is not None else (p["nodes"] or 1)
        return cls(command=list(command), ntasks=ntasks, cores_per_task=p["cores_per_task"],
                   gpus_per_task=p["gpus_per_task"], nodes=p["nodes"],
                   exclusive=p["exclusive"], time_limit=p["time_limit"],
                   urgency=p["urgency"], job_name=p["job_name"], queue=p["queue"],
                   cwd=p["cwd"], dependency=tuple(p["dependency"]),
                   begin_time=p["begin_time"], env_rules=env_rule_list(ctx),
                   setattrs=tuple(p["setattrs"]), setopts=tuple(p["setopts"]),
                   output=p["output"], error=p["error"], input=p["input_"],
                   label_io=p["label_io"], flags=flags, unbuffered=p.get("unbuffered", False),
                   signal=p.get("signal_"), rlimits=tuple(p.get("rlimits") or ()))

    def uses_cc(self) -> bool:
        """Whether ``{cc}`` appears anywhere a copy must substitute it."""
        texts: list[str | None] = [*self.command, self.time_limit, self.job_name, self.queue,
                                   self.cwd, *self.dependency, self.begin_time,
                                   *self.env_rules, *self.setattrs, *self.setopts,
                                   self.output, self.error, self.input]
        return any(t is not None and "{cc}" in t for t in texts)

    def with_cc(self, cc: int | str) -> "SubmitArgs":
        """A copy with ``{cc}`` replaced by CC in every string option and the command."""
        def sub(text: str | None) -> str | None:
            return None if text is None else substitute_cc(text, cc)

        return SubmitArgs(
            command=[substitute_cc(a, cc) for a in self.command], ntasks=self.ntasks,
            cores_per_task=self.cores_per_task, gpus_per_task=self.gpus_per_task,
            nodes=self.nodes, exclusive=self.exclusive, time_limit=sub(self.time_limit),
            urgency=self.urgency, job_name=sub(self.job_name), queue=sub(self.queue),
            cwd=sub(self.cwd), dependency=[substitute_cc(d, cc) for d in self.dependency],
            begin_time=sub(self.begin_time),
            env_rules=[substitute_cc(r, cc) for r in self.env_rules],
            setattrs=[substitute_cc(s, cc) for s in self.setattrs],
            setopts=[substitute_cc(s, cc) for s in self.setopts],
            output=sub(self.output), error=sub(self.error), input=sub(self.input),
            label_io=self.label_io, flags=self.flags, environ=self.environ,
            unbuffered=self.unbuffered, signal=self.signal, rlimits=self.rlimits)


def substitute_cc(text: str, cc: int | str) -> str:
    """Replace every ``{cc}`` in TEXT with CC (other braces are left alone)."""
    return text.replace("{cc}", str(cc))


def build_jobspec(args: SubmitArgs) -> Any:
    """A JobspecV1 for ARGS; ValueError/TypeError name the bad option."""
    from flux.job.Jobspec import JobspecV1
    from flux.job.dependency import parse_dependency
    from flux.util.fsd import parse_fsd

    if not args.command:
        raise ValueError("job command and arguments are missing")
    duration = None
    if args.time_limit is not None:
        try:
            duration = parse_fsd(args.time_limit)
        except ValueError:
            raise ValueError(f"--time-limit: invalid Flux standard duration "
                             f"'{args.time_limit}'") from None
    for option, template in (("--output", args.output), ("--error", args.error)):
        if template is not None:
            check_output_template(template, option)
    environment = apply_env_rules(args.env_rules, args.environ)
    jobspec = JobspecV1.from_command(
        args.command, num_tasks=args.ntasks, cores_per_task=args.cores_per_task,
        gpus_per_task=args.gpus_per_task, num_nodes=args.nodes, exclusive=args.exclusive,
        duration=duration, environment=environment,
        cwd=args.cwd if args.cwd is not None else os.getcwd(), name=args.job_name,
        input=args.input, output=args.output, error=args.error, label_io=args.label_io,
        queue=args.queue)
    dependencies = [parse_dependency(uri) for uri in args.dependency]
    if args.begin_time is not None:
        when = parse_begin_time(args.begin_time)
        dependencies.append({"scheme": "begin-time", "value": f"{when:.6f}"})
    if dependencies:
        jobspec.setattr("system.dependencies", dependencies)
    for arg in args.setattrs:
        key, value = parse_setattr(arg)
        jobspec.setattr(key, value)
    if args.unbuffered:
        for stream in ("stdout", "stderr"):
            jobspec.setattr_shell_option(f"output.{stream}.buffer.type", "none")
        jobspec.setattr_shell_option("output.batch-timeout", 0.05)
    if args.signal is not None:
        jobspec.setattr_shell_option("signal", parse_signal(args.signal))
    if args.rlimits:
        limits = apply_rlimit_rules(args.rlimits)
        if limits:
            jobspec.setattr_shell_option("rlimit", limits)
    for arg in args.setopts:
        key, value = parse_setopt(arg)
        jobspec.setattr_shell_option(key, value)
    return jobspec


def parse_signal(text: str) -> dict[str, Any]:
    """``--signal=[SIG][@TIME]`` -> ``{"signum", "timeleft"}`` (default SIGUSR1, 60 s)."""
    import signal as _signal

    from flux.util.fsd import parse_fsd

    sig, _at, when = text.partition("@")
    signum = int(_signal.SIGUSR1)
    if sig:
        name = sig.strip().upper()
        if name.isdigit():
            signum = int(name)
        else:
            try:
                signum = int(_signal.Signals[name if name.startswith("SIG") else "SIG" + name])
            except KeyError:
                raise ValueError(f"--signal: invalid signal '{sig}'") from None
        if not 0 < signum < _signal.NSIG:
            raise ValueError(f"--signal: invalid signal '{sig}'")
    timeleft = 60.0
    if when:
        try:
            timeleft = parse_fsd(when)
        except ValueError:
            raise ValueError(f"--signal: invalid time '{when}'") from None
    return {"signum": signum, "timeleft": timeleft}


def apply_rlimit_rules(rules: Iterable[str]) -> dict[str, int]:
    """The ``rlimit`` shell option for ``--rlimit`` RULES, in order.

    ``NAME`` copies our soft limit, ``NAME=VALUE`` sets one (``unlimited``
    allowed), ``*`` copies all, ``-NAME`` / ``-*`` remove.  Names are the
    RLIMIT_* names without the prefix, any case.
    """
    import resource

    names = sorted(n[len("RLIMIT_"):].lower() for n in dir(resource) if n.startswith("RLIMIT_"))
    out: dict[str, int] = {}

    def ours(name: str) -> int:
        soft, _hard = resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))
        return -1 if soft == resource.RLIM_INFINITY else soft

    for rule in rules:
        for item in rule.split(","):
            item = item.strip()
            if not item:
                continue
            if item == "*":
                out.update({n: ours(n) for n in names})
                continue
            if item == "-*":
                out.clear()
                continue
            remove = item.startswith("-")
            name, eq, value = item.lstrip("-").partition("=")
            name = name.lower()
            if name not in names:
                raise ValueError(f"--rlimit: unknown resource limit '{name}'")
            if remove:
                out.pop(name, None)
            elif eq:
                if value.lower() in ("unlimited", "infinity", "inf"):
                    out[name] = -1
                else:
                    try:
                        out[name] = int(value)
                    except ValueError:
                        raise ValueError(f"--rlimit: invalid value '{value}' for {name}") \
                            from None
            else:
                out[name] = ours(name)
    return out
