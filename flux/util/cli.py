"""argparse helpers of Flux's Python commands.

``help_formatter`` (``-l, --long=ARG`` option layout), ``CLIMain`` (run a
command's main, turning an exception into a one-line error and exit 1),
and the option actions ``ColorAction``, ``YesNoAction``, ``TreedictAction``
and the ``FilterAction*`` family used by ``flux jobs``-like listers.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import Any, Callable

from flux.util.treedict import set_treedict

__all__ = [
    "help_formatter", "CLIMain", "ColorAction", "ColorWhen", "YesNoAction", "TreedictAction",
    "FilterAction", "FilterActionSetUpdate", "FilterActionUser", "FilterTrueAction",
]


class _FluxHelpFormatter(argparse.HelpFormatter):
    """Options read ``-l, --long=ARG``; a long-only option is indented as if
    it had a short one, so every long option starts in the same column."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            (metavar,) = self._metavar_formatter(action, action.dest)(1)
            return metavar
        opts = list(action.option_strings)
        text = ", ".join(opts)
        if len(opts) == 1 and len(opts[0]) > 2:
            text = "    " + opts[0]
        if action.nargs == 0:
            return text
        return text + "=" + self._format_args(action, action.dest.upper())


class _FluxRawDescriptionHelpFormatter(_FluxHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def help_formatter(argwidth: int = 40,
                   raw_description: bool = False) -> Callable[[str], argparse.HelpFormatter]:
    """A ``formatter_class`` for argparse with Flux's option layout.

    ``argwidth`` is the widest option column before help moves to its own
    line; ``raw_description`` keeps the description's line breaks.
    """
    cls = _FluxRawDescriptionHelpFormatter if raw_description else _FluxHelpFormatter

    def make(prog: str) -> argparse.HelpFormatter:
        return cls(prog, max_help_position=argwidth)

    return make


class CLIMain:
    """Run a command's main function the way Flux's Python commands do.

    ``CLIMain(LOGGER)(main)``: sets up logging (level from
    ``FLUX_PYCLI_LOGLEVEL``, default INFO; lines ``NAME: LEVEL: message``),
    calls ``main()`` and exits: 0, or ``sys.exit``'s own code, or 1 after
    logging an exception as one line (an OSError's strerror, with
    ``: 'filename'`` when it has one; the traceback only at DEBUG).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger()

    def __call__(self, main_func: Callable[[], Any]) -> None:
        try:
            level = int(os.environ.get("FLUX_PYCLI_LOGLEVEL", logging.INFO))
        except ValueError:
            level = logging.INFO
        logging.basicConfig(level=level, format="%(name)s: %(levelname)s: %(message)s")
        exit_code: Any = 0
        try:
            main_func()
        except SystemExit as exc:
            exit_code = exc.code
        except Exception as exc:  # noqa: BLE001 - a command's last resort
            exit_code = 1
            message = getattr(exc, "strerror", None) or str(exc)
            filename = getattr(exc, "filename", None)
            if filename:
                message += f": '{filename}'"
            self.logger.error(message)
            self.logger.debug(traceback.format_exc())
        finally:
            logging.shutdown()
        sys.exit(exit_code)


class ColorWhen(str):
    """A ``--color`` value (``auto``, ``always`` or ``never``) that knows
    whether to color: ``.enabled`` (``auto``: standard output is a terminal)."""

    @property
    def enabled(self) -> bool:
        if self == "always":
            return True
        if self == "never":
            return False
        isatty = getattr(sys.stdout, "isatty", None)
        return bool(isatty and isatty())


class ColorAction(argparse.Action):
    """``--color[=WHEN]``: WHEN is ``auto``, ``always`` (a bare ``--color``) or
    ``never``; anything else is a usage error.  The default is ``auto``, or
    ``never`` when ``NO_COLOR`` is set to a non-empty value."""

    WHEN = ("auto", "always", "never")

    def __init__(self, option_strings: list[str], dest: str, nargs: Any = "?",
                 const: str = "always", default: Any = None, metavar: str = "WHEN",
                 help: str | None = None, **kwargs: Any) -> None:  # noqa: A002
        if default is None:
            default = "never" if os.environ.get("NO_COLOR") else "auto"
        if help is None:
            help = "Use color; WHEN can be 'never', 'always', or 'auto' (default)"  # noqa: A001
        super().__init__(option_strings, dest, nargs=nargs, const=ColorWhen(const),
                         default=ColorWhen(default), choices=self.WHEN, metavar=metavar,
                         help=help, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, ColorWhen(values if values is not None else self.const))


class YesNoAction(argparse.Action):
    """An option taking ``yes`` or ``no``, stored as True or False;
    anything else raises ValueError naming the option."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None,  # noqa: A002
                 metavar: str = "[yes|no]", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, help=help, metavar=metavar, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values not in ("yes", "no"):
            raise ValueError(f"{option_string} requires either 'yes' or 'no'")
        setattr(namespace, self.dest, values == "yes")


class TreedictAction(argparse.Action):
    """``KEY=VALUE`` arguments into a dict; dotted keys make levels
    (``a.b=1`` is ``{"a": {"b": 1}}``) and VALUE is JSON when it parses."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        result: dict[str, Any] = {}
        for arg in values if isinstance(values, list) else [values]:
            key, eq, text = arg.partition("=")
            if not eq:
                raise ValueError(f"Missing required value for key {arg}")
            try:
                value = json.loads(text)
            except (json.JSONDecodeError, TypeError):
                value = text
            set_treedict(result, key, value)
        setattr(namespace, self.dest, result)


class FilterAction(argparse.Action):
    """Store the value and mark the namespace ``filtered``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.filtered = True


class FilterActionSetUpdate(argparse.Action):
    """Add the comma-separated values to the destination set; mark ``filtered``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        namespace.filtered = True
        current = getattr(namespace, self.dest, None)
        if current is None:
            current = set()
            setattr(namespace, self.dest, current)
        current.update(values.split(","))


class FilterActionUser(argparse.Action):
    """Store the value; mark the namespace ``filtered`` and ``filtereduser``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        namespace.filtered = True
        namespace.filtereduser = True
        setattr(namespace, self.dest, values)


class FilterTrueAction(argparse.Action):
    """A flag (no argument) storing ``const`` (True); marks ``filtered``."""

    def __init__(self, option_strings: list[str], dest: str, const: Any = True,
                 default: Any = False, required: bool = False, help: str | None = None,  # noqa: A002
                 metavar: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, const=const, default=default,
                         required=required, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, self.const)
        namespace.filtered = True
