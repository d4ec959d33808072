"""The job request of ``flux submit``/``flux run`` (and ``batch``/``alloc``) and its jobspec.

:class:`SubmitArgs` holds the values of the submission options;
:func:`build_jobspec` builds the jobspec as Flux's commands do, through
``JobspecV1.from_submit`` and ``apply_options`` (``flux.job._utils`` holds
the option rules; our statement in ``specs/jobspec.md`` and
``specs/cli-jobs.md``).  The click options that fill a SubmitArgs are in
``cli/submitopts.py``; this module does not import click, so ``flux run
COMMAND`` without options can build its jobspec without it (``cli/main.py``).

Everything here is pure apart from reading files named by the user and
loading CLI plugins.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# the submit path's modules, imported with the command (a guest's command may
# not be able to read the Python tree once it runs)
from flux.cli.plugin import CLIPluginRegistry
from flux.job import _utils

URGENCY_NAMES = {"hold": 0, "default": 16, "expedite": 31}
#: --flags names -> flux-core submit flag bits
SUBMIT_FLAGS = {"debug": 2, "waitable": 4, "novalidate": 8}
_TEMPLATE_TAG: Any = None  # compiled on first use: re costs a short command milliseconds
_ID_ENCODINGS = ("dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji")

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
    """``--begin-time``: ``+FSD`` (from now), epoch seconds, an ISO 8601 date/time, or
    any date the parsedatetime package reads (``in an hour``, ``tomorrow``).

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
    import re

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
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        pass
    # anything the parsedatetime package reads, as flux-mini(1) says ("2021-06-21
    # 8am", "in an hour", "tomorrow morning")
    from flux.util.timeparse import parse_datetime

    try:
        return parse_datetime(text, now=datetime.fromtimestamp(now).astimezone()).timestamp()
    except ValueError:
        raise ValueError(f"--begin-time: cannot parse '{text}' (expected +FSD, "
                         "epoch seconds, HH:MM, an ISO 8601 date and time, or a date "
                         "such as '2021-06-21 8am' or 'in an hour')") from None


def check_output_template(template: str, option: str) -> None:
    """Refuse ``{{id.X}}`` with an unknown encoding X (the shell expands the rest)."""
    global _TEMPLATE_TAG
    if "{{" not in template:
        return
    if _TEMPLATE_TAG is None:
        import re

        _TEMPLATE_TAG = re.compile(r"\{\{\s*(id|jobid)(?:\.([A-Za-z0-9]+))?\s*\}\}")
    for match in _TEMPLATE_TAG.finditer(template):
        encoding = match.group(2)
        if encoding is not None and encoding not in _ID_ENCODINGS:
            raise ValueError(f"{option}: unknown job id encoding '{encoding}' in "
                             f"'{match.group(0)}' (expected one of {', '.join(_ID_ENCODINGS)})")


# --------------------------------------------------------------------------
# option rules implemented in flux.job._utils (names kept for our callers)

def apply_env_rules(rules: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The job environment: ENVIRON copied, then RULES applied in order
    (``flux.job._utils.get_filtered_environment``, env-expand templates aside)."""
    return _utils.get_filtered_environment(list(rules), environ)[0]


def parse_signal(text: str) -> dict[str, Any]:
    """``--signal=[SIG][@TIME]`` -> ``{"signum", "timeleft"}`` (default SIGUSR1, 60 s)."""
    return _utils.parse_signal_option(text)


def apply_rlimit_rules(rules: Iterable[str]) -> dict[str, int]:
    """The ``rlimit`` shell option for ``--rlimit`` RULES (over Flux's default set)."""
    return _utils.get_filtered_rlimits(list(rules))


# --------------------------------------------------------------------------
# the jobspec

class SubmitArgs:
    """The job-request options of one ``flux submit``/``flux run`` invocation.

    A plain record (not a dataclass: importing dataclasses costs ``flux run``
    ~5 ms). ``environ`` defaults to a copy of ``os.environ``; ``prog`` is
    the command the jobspec is for, as CLI plugins see it (submit, run);
    ``plugin_options`` the values of the CLI plugins' options, by dest;
    ``extra`` more option values for the namespace CLI plugins see (``flux
    batch``'s nslots, cores_per_slot, broker_opts, ...).
    """

    __slots__ = ("command", "ntasks", "cores_per_task", "gpus_per_task", "nodes",
                 "exclusive", "time_limit", "urgency", "job_name", "queue", "cwd",
                 "dependency", "begin_time", "env_rules", "setattrs", "setopts", "output",
                 "error", "input", "label_io", "flags", "environ", "unbuffered", "signal",
                 "rlimits", "bank", "requires", "taskmap", "add_files", "prog",
                 "plugin_options", "extra")

    def __init__(self, command: list[str],
                 ntasks: int = 1,
                 cores_per_task: int = 1,
                 gpus_per_task: int | None = None,
                 nodes: int | None = None,
                 exclusive: bool = False,
                 time_limit: str | None = None,
                 urgency: int = 16,
                 job_name: str | None = None,
                 queue: str | None = None,
                 cwd: str | None = None,
                 dependency: Sequence[str] = (),
                 begin_time: str | None = None,
                 env_rules: Sequence[str] = (),
                 setattrs: Sequence[str] = (),
                 setopts: Sequence[str] = (),
                 output: str | None = None,
                 error: str | None = None,
                 input: str | None = None,
                 label_io: bool = False,
                 flags: int = 0,
                 environ: Mapping[str, str] | None = None,
                 unbuffered: bool = False,
                 signal: str | None = None,
                 rlimits: Sequence[str] = (),
                 bank: str | None = None,
                 requires: Sequence[str] = (),
                 taskmap: str | None = None,
                 add_files: Sequence[str] = (),
                 prog: str = "submit",
                 plugin_options: Mapping[str, Any] | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        self.command = command
        self.ntasks = ntasks
        self.cores_per_task = cores_per_task
        self.gpus_per_task = gpus_per_task
        self.nodes = nodes
        self.exclusive = exclusive
        self.time_limit = time_limit
        self.urgency = urgency
        self.job_name = job_name
        self.queue = queue
        self.cwd = cwd
        self.dependency = dependency
        self.begin_time = begin_time
        self.env_rules = env_rules
        self.setattrs = setattrs
        self.setopts = setopts
        self.output = output
        self.error = error
        self.input = input
        self.label_io = label_io
        self.flags = flags
        self.environ = dict(os.environ) if environ is None else environ
        self.unbuffered = unbuffered
        self.signal = signal
        self.rlimits = rlimits
        self.bank = bank
        self.requires = requires
        self.taskmap = taskmap
        self.add_files = add_files
        self.prog = prog
        self.plugin_options = {} if plugin_options is None else plugin_options
        self.extra = {} if extra is None else extra

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  (mutable, as the dataclass was)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"SubmitArgs({fields})"

    @classmethod
    def from_click(cls, ctx: Any, command: Sequence[str]) -> "SubmitArgs":
        """Collect the values the click options (and the plugins) gave CTX
        (``cli.submitopts.args_from_click``)."""
        from cli.submitopts import args_from_click

        return args_from_click(ctx, command)

    def _texts(self) -> list[str | None]:
        return [*self.command, self.time_limit, self.job_name, self.queue, self.cwd,
                *self.dependency, self.begin_time, *self.env_rules, *self.setattrs,
                *self.setopts, self.output, self.error, self.input, self.bank,
                *self.requires, self.taskmap, *self.add_files]

    def uses_cc(self) -> bool:
        """Whether ``{cc}`` appears anywhere a copy must substitute it."""
        return any(t is not None and "{cc}" in t for t in self._texts())

    def with_cc(self, cc: int | str) -> "SubmitArgs":
        """A copy with ``{cc}`` replaced by CC in every string option and the command."""
        def sub(text: str | None) -> str | None:
            return None if text is None else substitute_cc(text, cc)

        def subs(texts: Sequence[str]) -> list[str]:
            return [substitute_cc(t, cc) for t in texts]

        return SubmitArgs(
            command=subs(self.command), ntasks=self.ntasks,
            cores_per_task=self.cores_per_task, gpus_per_task=self.gpus_per_task,
            nodes=self.nodes, exclusive=self.exclusive, time_limit=sub(self.time_limit),
            urgency=self.urgency, job_name=sub(self.job_name), queue=sub(self.queue),
            cwd=sub(self.cwd), dependency=subs(self.dependency),
            begin_time=sub(self.begin_time), env_rules=subs(self.env_rules),
            setattrs=subs(self.setattrs), setopts=subs(self.setopts),
            output=sub(self.output), error=sub(self.error), input=sub(self.input),
            label_io=self.label_io, flags=self.flags, environ=self.environ,
            unbuffered=self.unbuffered, signal=self.signal, rlimits=self.rlimits,
            bank=sub(self.bank), requires=subs(self.requires), taskmap=sub(self.taskmap),
            add_files=subs(self.add_files), prog=self.prog,
            plugin_options=self.plugin_options, extra=self.extra)

    def namespace(self) -> Any:
        """The argparse-like namespace ``JobspecV1.apply_options`` (and the CLI
        plugins' callbacks) see: Flux's option names, plugin dests, and the
        other options of the command line."""
        from types import SimpleNamespace

        dependency = list(self.dependency)
        if self.begin_time is not None:
            dependency.append(f"begin-time:{parse_begin_time(self.begin_time):.6f}")
        return SimpleNamespace(
            command=list(self.command), ntasks=self.ntasks, nodes=self.nodes,
            cores_per_task=self.cores_per_task, gpus_per_task=self.gpus_per_task,
            exclusive=self.exclusive, job_name=self.job_name, queue=self.queue,
            bank=self.bank, cwd=self.cwd, output=self.output, error=self.error,
            input=self.input, label_io=self.label_io, unbuffered=self.unbuffered,
            urgency=self.urgency, flags=self.flags, begin_time=self.begin_time,
            env=list(self.env_rules), environ=self.environ, rlimit=list(self.rlimits),
            signal=self.signal, taskmap=self.taskmap, dependency=dependency or None,
            requires=list(self.requires) or None, setopt=list(self.setopts),
            setattr=list(self.setattrs), time_limit=self.time_limit,
            add_file=list(self.add_files) or None, shell_options=None, attributes=None,
            **{**self.extra, **self.plugin_options})


def substitute_cc(text: str, cc: int | str) -> str:
    """Replace every ``{cc}`` in TEXT with CC (other braces are left alone)."""
    return text.replace("{cc}", str(cc))


#: flux-run(1)'s per-resource options, by dest (``--tasks-per-node`` alone keeps
#: its per-task meaning here: -N nodes with that many tasks each)
PER_RESOURCE_OPTIONS = ("cores", "gpus_per_node", "tasks_per_core")


def per_resource_request(args: SubmitArgs) -> dict[str, Any] | None:
    """The per-resource options of ARGS (``--cores``, ``--gpus-per-node``,
    ``--tasks-per-core``, with ``--tasks-per-node``), or None when none was given."""
    extra = args.extra
    if all(extra.get(name) is None for name in PER_RESOURCE_OPTIONS):
        return None
    return {name: extra.get(name) for name in (*PER_RESOURCE_OPTIONS, "tasks_per_node")}


def build_jobspec(args: SubmitArgs, registry: CLIPluginRegistry | None = None) -> Any:
    """A JobspecV1 for ARGS, as ``JobspecV1.from_submit`` builds it.

    The CLI plugins of ``args.prog`` modify it and then validate it
    (REGISTRY, if given, is the invocation's, else one is loaded).
    ValueError/TypeError name the bad option.
    """
    from flux.job.Jobspec import JobspecV1

    if not args.command:
        raise ValueError("job command and arguments are missing")
    for option, template in (("--output", args.output), ("--error", args.error)):
        if template is not None:
            check_output_template(template, option)
    jobspec = JobspecV1.from_submit(
        args.command, per_resource=per_resource_request(args), ntasks=args.ntasks,
        nodes=args.nodes,
        cores_per_task=args.cores_per_task, gpus_per_task=args.gpus_per_task,
        exclusive=args.exclusive, name=args.job_name, queue=args.queue, bank=args.bank,
        cwd=args.cwd if args.cwd is not None else os.getcwd(), output=args.output,
        error=args.error, input=args.input, label_io=args.label_io,
        unbuffered=args.unbuffered, prog=args.prog, args=args.namespace())
    (registry or CLIPluginRegistry(args.prog)).validate(jobspec)
    return jobspec

