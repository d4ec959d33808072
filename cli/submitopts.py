"""The click options shared by ``flux submit`` and ``flux run`` (and ``batch``/``alloc``).

The click options are attached with :func:`submission_options`; the
commands use :class:`SubmitCommand`, which adds the options of CLI plugins
(``flux.cli.plugin``: ``--PREFIX-name`` from ``*.py`` files in
``FLUX_CLI_PLUGINPATH`` and the system plugin directories) to the
command's options and ``--help``.  :func:`args_from_click` collects their
values in a ``SubmitArgs``, from which ``cli.submitargs.build_jobspec``
builds the jobspec:

- ``--env``/``--env-remove``/``--env-file`` rules apply in command-line
  order over a copy of the environment;
- ``--setattr KEY=VAL`` / ``--setopt KEY[=VAL]``: VAL is JSON when it
  parses, else a string (``^FILE`` for setattr reads JSON from FILE);
- ``--rlimit`` rules apply over Flux's default set of propagated limits;
- ``--urgency`` takes 0-31 or hold/default/expedite;
- ``--cc``/``--bcc`` replicate the job, substituting ``{cc}``.

Everything here is pure apart from reading files named by the user and
loading CLI plugins.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

# the submit path's modules, imported with the command (a guest's command may
# not be able to read the Python tree once it runs)
from flux.cli.plugin import CLIPluginOption, CLIPluginRegistry
from flux.job._utils import parse_json_or_string, parse_setattr, parse_setopt
from cli.submitargs import (  # noqa: F401  (re-exported: this was their home)
    PER_RESOURCE_OPTIONS, SUBMIT_FLAGS, URGENCY_NAMES, SubmitArgs, apply_env_rules,
    apply_rlimit_rules, build_jobspec,
    check_output_template, parse_begin_time, parse_flags, parse_signal, parse_urgency,
    substitute_cc)

__all__ = [
    "URGENCY_NAMES", "SUBMIT_FLAGS", "OrderedCommand", "SubmitCommand", "submission_options",
    "SubmitArgs", "parse_urgency", "parse_setattr", "parse_setopt", "parse_json_or_string",
    "apply_env_rules", "env_rule_list", "parse_begin_time", "parse_flags",
    "check_output_template", "build_jobspec", "substitute_cc", "ENV_RULE_OPTIONS",
    "parse_signal", "apply_rlimit_rules", "plugin_click_option", "build_instance_jobspec",
    "submit_instance",
]

#: the options whose values, in command-line order, make the env rule list
ENV_RULE_OPTIONS = {"env": "", "env_remove": "-", "env_file": "^"}
_PLUGINS_META = "flux.cli.plugins"


# --------------------------------------------------------------------------
# click plumbing: keep the command-line order of repeated options

class OrderedCommand(click.Command):
    """A click Command that remembers the order options appeared in.

    ``ctx.meta["param_order"]`` lists parameter names, one per occurrence,
    in command-line order, so rules spread over several options
    (``--env``, ``--env-remove``, ``--env-file``) can be applied in the
    order the user wrote them.  A short option's value may follow an
    ``=`` (``-t=5``, ``-B=-Sx=1``), as with Flux's argparse parsers.
    """

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse_args = parser.parse_args

        def recording_parse_args(args: list[str]) -> Any:
            opts, largs, order = parse_args(args)
            ctx.meta["param_order"] = [param.name for param in order]
            return opts, largs, order

        parser.parse_args = recording_parse_args  # type: ignore[method-assign]
        match_short_opt = parser._match_short_opt

        def short_opt_with_equals(arg: str, state: Any) -> None:
            # -B=-Sfoo=1 means -B with "-Sfoo=1", as Flux's argparse reads it
            # (click would give "=-Sfoo=1"); -S= gives an empty value
            option = parser._short_opt.get(arg[:2]) if arg[2:3] == "=" else None
            if option is not None and option.takes_value:
                state.rargs.insert(0, arg[3:])
                arg = arg[:2]
            match_short_opt(arg, state)

        parser._match_short_opt = short_opt_with_equals  # type: ignore[method-assign]
        return parser


# --------------------------------------------------------------------------
# CLI plugins as click options

class _ArgparseType(click.ParamType):
    """An argparse ``type=`` callable (and ``choices=``) as a click type."""

    def __init__(self, convert: Callable[[str], Any] | None, choices: Sequence[Any] | None):
        self.fn = convert
        self.choices = list(choices) if choices is not None else None
        self.name = getattr(convert, "__name__", "value") if convert is not None else "text"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if self.fn is not None and isinstance(value, str):
            try:
                value = self.fn(value)
            except (TypeError, ValueError, click.BadParameter):
                self.fail(f"invalid {self.name} value: {value!r}", param, ctx)
        if self.choices is not None and value not in self.choices:
            self.fail(f"invalid choice: {value!r} (choose from "
                      f"{', '.join(repr(c) for c in self.choices)})", param, ctx)
        return value


def _as_list(default: Any) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return list(value) if value else default
    return callback


def plugin_click_option(opt: CLIPluginOption) -> click.Option:
    """The click option for a CLI plugin's ``add_option(name, **argparse_kwargs)``.

    Handles the argparse actions ``store`` (``type``, ``choices``,
    ``nargs`` ``?``/N/``*``/``+``), ``store_true``, ``store_false``,
    ``store_const``, ``append`` and ``count``; the value lands under the
    option's dest as argparse would put it.  ValueError for others.
    """
    kw = dict(opt.kwargs)
    dest = kw.pop("dest")
    action = kw.pop("action", "store")
    help_text = kw.pop("help", None)
    hidden = help_text == "==SUPPRESS=="
    attrs: dict[str, Any] = {"help": None if hidden else help_text, "hidden": hidden,
                             "required": bool(kw.pop("required", False))}
    metavar = kw.pop("metavar", None)
    default = kw.pop("default", None)
    const = kw.pop("const", None)
    nargs = kw.pop("nargs", None)
    ptype = _ArgparseType(kw.pop("type", None), kw.pop("choices", None))
    if kw:
        raise ValueError(f"{opt.name}: unsupported option setting(s) {', '.join(sorted(kw))}")
    decls = [opt.name, dest]
    if action == "store_true":
        return click.Option(decls, is_flag=True, flag_value=True,
                            default=False if default is None else default, **attrs)
    if action == "store_false":
        return click.Option(decls, is_flag=True, flag_value=False,
                            default=True if default is None else default, **attrs)
    if action == "store_const":
        return click.Option(decls, is_flag=True, flag_value=const, default=default, **attrs)
    if action == "count":
        return click.Option(decls, count=True, default=default or 0, **attrs)
    attrs["metavar"] = metavar
    if action == "append" or nargs in ("*", "+"):
        return click.Option(decls, multiple=True, type=ptype, callback=_as_list(default),
                            **attrs)
    if action != "store":
        raise ValueError(f"{opt.name}: argparse action {action!r} is not supported")
    if nargs == "?":
        return click.Option(decls, is_flag=False, flag_value=const, type=ptype,
                            default=default, **attrs)
    if isinstance(nargs, int) and nargs > 1:
        return click.Option(decls, nargs=nargs, type=ptype, default=default,
                            callback=_as_list(default), **attrs)
    if nargs not in (None, 1):
        raise ValueError(f"{opt.name}: nargs={nargs!r} is not supported")
    return click.Option(decls, type=ptype, default=default, **attrs)


class SubmitCommand(OrderedCommand):
    """A submission command (``prog``) whose options include its CLI plugins' options.

    The plugins are loaded once per invocation (``ctx.meta``) from the
    search path in effect then; their options follow the builtin ones and
    are listed under "Options provided by plugins" in ``--help``.
    """

    def __init__(self, *args: Any, prog: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prog = prog

    def plugins(self, ctx: click.Context) -> tuple[CLIPluginRegistry, list[click.Option]]:
        """The plugin registry of this invocation and its click options."""
        loaded = ctx.meta.get(_PLUGINS_META)
        if loaded is None:
            from cli.common import die

            try:
                registry = CLIPluginRegistry(self.prog)
                options = [plugin_click_option(opt) for opt in registry.options]
            except (ValueError, TypeError, OSError) as exc:
                die(self.prog, f"CLI plugins: {exc}")
            names = {p.name for p in self.params}
            strings = {s for p in self.params for s in getattr(p, "opts", ())}
            for option in options:
                if option.name in names or strings.intersection(option.opts):
                    die(self.prog, f"CLI plugins: {option.opts[0]} (dest {option.name}) "
                                   "conflicts with a builtin option")
            loaded = ctx.meta[_PLUGINS_META] = (registry, options)
        return loaded

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        _registry, options = self.plugins(ctx)
        if not options:
            return params
        help_option = self.get_help_option(ctx)
        builtin = [p for p in params if p is not help_option]
        return [*builtin, *options, *([help_option] if help_option is not None else [])]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _registry, options = self.plugins(ctx)
        plugin_names = {o.name for o in options}
        builtin: list[tuple[str, str]] = []
        provided: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None or isinstance(param, click.Argument):
                continue
            (provided if param.name in plugin_names else builtin).append(record)
        if builtin:
            with formatter.section("Options"):
                formatter.write_dl(builtin)
        if provided:
            with formatter.section("Options provided by plugins"):
                formatter.write_dl(provided)


def plugin_values(ctx: click.Context) -> dict[str, Any]:
    """The parsed values of the plugin options, by dest."""
    command = ctx.command
    if not isinstance(command, SubmitCommand):
        return {}
    _registry, options = command.plugins(ctx)
    return {o.name: ctx.params.get(o.name) for o in options if o.name is not None}


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


#: the kinds of submission command: their size options and whether they take stdio options
SUBMISSION_KINDS = ("submit", "batch", "alloc")


def submission_options(fn: Callable[..., Any] | None = None, *,
                       kind: str = "submit") -> Any:
    """Attach the job-request options of ``flux submit`` and ``flux run``.

    ``kind="batch"`` or ``"alloc"`` gives the options of ``flux batch`` /
    ``flux alloc`` instead (flux-batch(1)): the size is in slots (``-n
    --nslots``, ``-c --cores-per-slot``, ``-g --gpus-per-slot``),
    ``-B/--broker-opts`` and ``--conf`` configure the new instance (so
    ``--bank`` has no short option there), and ``alloc`` takes no stdio
    options.  Usable as ``@submission_options`` or
    ``@submission_options(kind=...)``.
    """
    if kind not in SUBMISSION_KINDS:
        raise ValueError(f"unknown submission kind {kind!r}")
    if fn is None:
        return lambda f: _attach_options(f, kind)
    return _attach_options(fn, kind)


def _size_options(kind: str) -> list[Callable[..., Any]]:
    if kind == "submit":
        return [
            click.option("-n", "--ntasks", type=click.IntRange(min=1), default=None,
                         help="Number of tasks to start (default: 1, or one per node with -N)"),
            click.option("-c", "--cores-per-task", type=click.IntRange(min=1), default=1,
                         show_default=True, help="Number of cores to allocate per task"),
            click.option("-g", "--gpus-per-task", type=click.IntRange(min=0), default=None,
                         help="Number of GPUs to allocate per task"),
            click.option("-N", "--nodes", type=click.IntRange(min=1), default=None,
                         help="Distribute tasks over N nodes"),
            click.option("--tasks-per-node", type=click.IntRange(min=1), default=None,
                         metavar="N", help="With -N, N tasks on each node (instead of -n)"),
            # flux-run(1)'s per-resource options (not with -n, -c, -g)
            click.option("--cores", type=click.IntRange(min=1), default=None, metavar="N",
                         help="Total number of cores (per-resource: a task per core "
                              "unless --tasks-per-node/--tasks-per-core)"),
            click.option("--gpus-per-node", type=click.IntRange(min=0), default=None,
                         metavar="N", help="With -N, N GPUs on each node"),
            click.option("--tasks-per-core", type=click.IntRange(min=1), default=None,
                         metavar="N", help="Run N tasks on each allocated core"),
            click.option("-x", "--exclusive", is_flag=True,
                         help="With -N, allocate whole nodes"),
        ]
    return [
        click.option("-n", "--nslots", type=click.IntRange(min=1), default=None,
                     help="Number of resource slots (required unless -N is given; a slot "
                          "is -c cores, 1 by default)"),
        click.option("-c", "--cores-per-slot", type=click.IntRange(min=1), default=1,
                     show_default=True, help="Number of cores per slot"),
        click.option("-g", "--gpus-per-slot", type=click.IntRange(min=0), default=None,
                     help="Number of GPUs per slot"),
        click.option("-N", "--nodes", type=click.IntRange(min=1), default=None,
                     help="Distribute the slots over N nodes (without -n: N whole nodes)"),
        click.option("-x", "--exclusive", is_flag=True,
                     help="With -N, allocate whole nodes"),
        click.option("-B", "--broker-opts", "broker_opts", metavar="OPTS", multiple=True,
                     help="Options for the brokers of the new instance, comma-separated "
                          "(repeatable), e.g. -B-Slog-stderr-level=7"),
        click.option("--conf", "conf", metavar="CONF", multiple=True,
                     help="Configuration of the new instance: KEY=VAL, a .toml/.json "
                          "file, TOML/JSON text, or a named config (repeatable)"),
    ]


_IO_OPTIONS = {"output", "error", "input_", "label_io", "unbuffered"}


def _attach_options(fn: Callable[..., Any], kind: str) -> Callable[..., Any]:
    bank_decls = ("-B", "--bank") if kind == "submit" else ("--bank",)
    options = [
        *_size_options(kind),
        click.option("-t", "--time-limit", metavar="FSD", default=None,
                     help="Time limit in Flux standard duration, e.g. 10s, 2m, 1.5h"),
        click.option("--urgency", metavar="N", default="16", callback=_urgency_callback,
                     help="Urgency 0-31, or hold, default, expedite"),
        click.option("--job-name", metavar="NAME", default=None, help="Set the job name"),
        click.option("-q", "--queue", metavar="NAME", default=None, help="Submit to queue NAME"),
        click.option(*bank_decls, "bank", metavar="BANK", default=None,
                     help="Charge the job to BANK"),
        click.option("--cwd", metavar="DIR", default=None,
                     help="Working directory of the job (default: the current one)"),
        click.option("--dependency", metavar="URI", multiple=True,
                     help="RFC 26 dependency, e.g. afterok:JOBID (repeatable)"),
        click.option("--begin-time", metavar="+FSD|DATETIME", default=None,
                     help="Do not start the job before this time"),
        click.option("--requires", metavar="CONSTRAINT", multiple=True,
                     help="Run on nodes matching CONSTRAINT, e.g. ssd or host:node[1-2] "
                          "(repeatable, ANDed)"),
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
        click.option("--add-file", "add_files", metavar="[NAME[:PERMS]=]ARG", multiple=True,
                     help="Ship a file (or NAME=DATA) with the job, to {{tmpdir}}/NAME"),
        click.option("--taskmap", metavar="SCHEME[:VALUE]", default=None,
                     help="Map task ranks to nodes: block (default), cyclic[:N], "
                          "manual:RFC34-MAP or hostfile:FILE"),
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
                     help="Propagate our soft limit NAME (a glob), set NAME=VALUE, or stop "
                          "propagating it (-NAME); by default all but memlock, ofile, "
                          "msgqueue, nice, rtprio, rttime and sigpending"),
        click.option("--flags", "flag_names", metavar="FLAGS", default=None,
                     help="Comma-separated submit flags: debug, waitable, novalidate"),
        click.option("--debug", is_flag=True, help="Enable job debug events"),
        click.option("--dry-run", is_flag=True, help="Print the jobspec instead of submitting"),
        click.option("-v", "--verbose", count=True, help="Increase verbosity on stderr"),
    ]
    if kind == "alloc":
        # the new instance's initial program has a terminal (or our stdio), not files
        options = [o for o in options if _option_name(o) not in _IO_OPTIONS]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _option_name(decorator: Callable[..., Any]) -> str | None:
    """The parameter name a ``click.option(...)`` decorator would add."""
    probe = decorator(lambda: None)
    params = getattr(probe, "__click_params__", [])
    return params[-1].name if params else None


def args_from_click(ctx: click.Context, command: Sequence[str]) -> SubmitArgs:
    """Collect the values :func:`submission_options` (and the plugins) gave CTX.

    For ``flux batch``/``flux alloc`` the slot options stand in for the
    task ones (a slot is a virtual task) and are also kept in ``extra``
    under their own names.
    """
    p = ctx.params
    flags = parse_flags(p.get("flag_names"))
    if p.get("debug"):
        flags |= SUBMIT_FLAGS["debug"]
    extra: dict[str, Any] = {}
    if "nslots" in p:
        extra = {"nslots": p["nslots"], "cores_per_slot": p["cores_per_slot"],
                 "gpus_per_slot": p["gpus_per_slot"],
                 "broker_opts": list(p.get("broker_opts") or ()) or None,
                 "conf": list(p.get("conf") or ()) or None}
        count, cores, gpus = p["nslots"], p["cores_per_slot"], p["gpus_per_slot"]
    else:
        count, cores, gpus = p["ntasks"], p["cores_per_task"], p["gpus_per_task"]
        per_node = p.get("tasks_per_node")
        # (CLI plugins see these as Flux's argparse namespace has them, None if unset)
        extra = _per_resource_extra(ctx)
        if any(extra[name] is not None for name in PER_RESOURCE_OPTIONS):
            per_node = None         # part of the per-resource request
        if per_node is not None:
            # newer flux-run(1)'s --tasks-per-node: -N nodes, that many tasks on each
            if p["nodes"] is None:
                raise click.UsageError("--tasks-per-node requires -N, --nodes")
            if count is not None:
                raise click.UsageError("--tasks-per-node and -n, --ntasks cannot be used "
                                       "together")
            count = p["nodes"] * per_node
    ntasks = count if count is not None else (p["nodes"] or 1)
    prog = ctx.command.prog if isinstance(ctx.command, SubmitCommand) else "submit"
    return SubmitArgs(command=list(command), ntasks=ntasks, cores_per_task=cores,
               gpus_per_task=gpus, nodes=p["nodes"],
               exclusive=p["exclusive"], time_limit=p["time_limit"],
               urgency=p["urgency"], job_name=p["job_name"], queue=p["queue"],
               cwd=p["cwd"], dependency=tuple(p["dependency"]),
               begin_time=p["begin_time"], env_rules=env_rule_list(ctx),
               setattrs=tuple(p["setattrs"]), setopts=tuple(p["setopts"]),
               output=p.get("output"), error=p.get("error"), input=p.get("input_"),
               label_io=p.get("label_io", False), flags=flags,
               unbuffered=p.get("unbuffered", False),
               signal=p.get("signal_"), rlimits=tuple(p.get("rlimits") or ()),
               bank=p.get("bank"), requires=tuple(p.get("requires") or ()),
               taskmap=p.get("taskmap"), add_files=tuple(p.get("add_files") or ()),
               prog=prog, plugin_options=plugin_values(ctx), extra=extra)


def _per_resource_extra(ctx: click.Context) -> dict[str, Any]:
    """The per-resource options' values (flux-run(1)), by dest (None: not given).

    When one of ``--cores``, ``--gpus-per-node``, ``--tasks-per-core`` was
    given: ValueError, with flux-core's texts, for a mix with per-task
    options (``-n``, ``-c``, ``-g``), both ``--tasks-per-*``, or
    ``--gpus-per-node`` without ``-N``.
    """
    p = ctx.params
    values = {name: p.get(name) for name in (*PER_RESOURCE_OPTIONS, "tasks_per_node")}
    if all(p.get(name) is None for name in PER_RESOURCE_OPTIONS):
        return values
    if p.get("tasks_per_node") is not None and p.get("tasks_per_core") is not None:
        raise ValueError("Do not specify both the number of tasks per node and per core")
    if p.get("gpus_per_node") and not p.get("nodes"):
        raise ValueError("--gpus-per-node requires --nodes")
    cores_given = ctx.get_parameter_source("cores_per_task") not in (
        None, click.core.ParameterSource.DEFAULT)
    if p.get("ntasks") is not None or cores_given or p.get("gpus_per_task"):
        raise ValueError("Per-resource options can't be used with per-task options. "
                         "(See --help for details)")
    return values


# --------------------------------------------------------------------------
# flux batch / flux alloc: a job that is a new Flux instance

def split_broker_opts(values: Iterable[str] | None) -> list[str]:
    """``-B`` values, each split on commas (flux-batch(1))."""
    return [opt for value in values or () for opt in value.split(",") if opt]


def instance_size(args: SubmitArgs) -> tuple[int, bool]:
    """(slots, exclusive) of a batch/alloc request: ``-n``, else ``-N`` whole nodes.

    ValueError when neither was given, as Flux refuses it.
    """
    nslots = args.extra.get("nslots")
    if nslots is not None:
        return nslots, args.exclusive
    if args.nodes is None:
        raise ValueError("Number of slots to allocate must be specified")
    return args.nodes, True


def submit_instance(prog: str, args: SubmitArgs, jobspec: dict[str, Any],
                    dry_run: bool) -> tuple[Any, Any] | None:
    """``flux batch`` / ``flux alloc``: print JOBSPEC (``--dry-run``, then None) or
    submit it and return (handle, job id); a refusal ends the command with PROG's error."""
    if dry_run:
        import sys

        import orjson

        sys.stdout.write(orjson.dumps(jobspec).decode() + "\n")
        return None
    from cli.common import die
    from cli.job_common import open_handle, rpc_error_text
    from cli.job_submit import Submitter

    h = open_handle(prog)
    try:
        return h, Submitter(h, args.urgency, args.flags).submit(jobspec).get_id()
    except OSError as exc:
        die(prog, rpc_error_text(exc))


def build_instance_jobspec(args: SubmitArgs, *, script: str | None = None,
                           jobname: str | None = None,
                           broker_opts: Sequence[str] = (),
                           shell_options: Mapping[str, Any] | None = None,
                           registry: CLIPluginRegistry | None = None) -> Any:
    """The jobspec of ``flux batch`` (SCRIPT given: its text, run with
    ``args.command`` as its arguments) or ``flux alloc`` (``args.command`` is
    the initial program, an interactive shell when empty).

    Built as Flux's commands build it: ``JobspecV1.from_batch`` /
    ``from_alloc`` (one ``flux broker`` per node of the allocation; the
    script shipped as the RFC 37 file ``script``; ``--conf`` values as
    ``conf.json``; ``flux batch`` output to ``flux-{{id}}.out`` unless
    ``--output`` says otherwise, ``none``/``kvs`` meaning the KVS), then
    ``apply_options`` with this command line's other options and the CLI
    plugins of ``args.prog``.  BROKER_OPTS are added to ``-B``'s.
    ValueError/TypeError name the bad option.
    """
    from flux.job.Jobspec import JobspecV1

    nslots, exclusive = instance_size(args)
    for option, template in (("--output", args.output), ("--error", args.error)):
        if template is not None:
            check_output_template(template, option)
    opts = split_broker_opts(args.extra.get("broker_opts")) + list(broker_opts)
    common: dict[str, Any] = {
        "nslots": nslots, "nodes": args.nodes, "exclusive": exclusive,
        "cores_per_slot": args.cores_per_task, "gpus_per_slot": args.gpus_per_task,
        "broker_opts": opts or None, "conf": args.extra.get("conf"),
        "name": args.job_name, "queue": args.queue, "bank": args.bank,
        "cwd": args.cwd if args.cwd is not None else os.getcwd(),
        "error": args.error, "input": args.input, "label_io": args.label_io,
        "unbuffered": args.unbuffered, "args": args.namespace(), "prog": args.prog,
    }
    if script is not None:
        if args.job_name is None:
            common["name"] = jobname or "batch"
        jobspec = JobspecV1.from_batch(content=script, output=args.output, **common)
        if args.command:
            # the script's own arguments: {{tmpdir}}/script ARGS
            jobspec.jobspec["tasks"][0]["command"].extend(args.command)
    else:
        jobspec = JobspecV1.from_alloc(output=args.output, **common)
        if args.command:
            jobspec.jobspec["tasks"][0]["command"].extend(args.command)
    for key, value in (shell_options or {}).items():
        jobspec.setattr_shell_option(key, value)
    (registry or CLIPluginRegistry(args.prog)).validate(jobspec)
    return jobspec
