"""flux.cli.argparse: ``FluxArgumentParser``, argparse with Flux's defaults.

- ``allow_abbrev=False`` (``--n`` is not ``--ntasks``);
- Flux's help layout: option strings padded to ``argwidth`` columns,
  ``raw_description=True`` keeps the description's line breaks;
- ``add_argument(..., hidden_aliases=("--alias",))``: extra option strings
  that parse but are left out of ``--help`` (a tuple or list; a bare string
  is a TypeError);
- ``posix=True``: options stop at the first non-option argument, as POSIX
  getopt does, so a job's command keeps its own options; everything from
  there (a user ``--`` included) goes to the parser's one
  ``nargs=argparse.REMAINDER`` positional.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["FluxArgumentParser", "FluxHelpFormatter", "help_formatter"]


class FluxHelpFormatter(argparse.HelpFormatter):
    """Help with hidden aliases left out (and, optionally, raw descriptions)."""

    raw_description = False

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, "hidden_option_strings", None)
        if not hidden or not action.option_strings:
            return super()._format_action_invocation(action)
        shown = [s for s in action.option_strings if s not in hidden]
        saved = action.option_strings
        action.option_strings = shown or saved[:1]
        try:
            return super()._format_action_invocation(action)
        finally:
            action.option_strings = saved

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if self.raw_description:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _RawFluxHelpFormatter(FluxHelpFormatter):
    raw_description = True


def help_formatter(argwidth: int = 40, raw_description: bool = False) -> Any:
    """A ``formatter_class`` with help text starting at column ARGWIDTH."""
    cls = _RawFluxHelpFormatter if raw_description else FluxHelpFormatter
    return lambda prog: cls(prog, max_help_position=argwidth)


def _add_with_hidden(add: Any, args: tuple[Any, ...], hidden_aliases: Any,
                     kwargs: dict[str, Any]) -> argparse.Action:
    if isinstance(hidden_aliases, str):
        raise TypeError(f"hidden_aliases must be a tuple or list, not a str "
                        f"(did you mean hidden_aliases=({hidden_aliases!r},)?)")
    aliases = tuple(hidden_aliases or ())
    action = add(*args, *aliases, **kwargs)
    if aliases:
        action.hidden_option_strings = set(aliases)
    return action


class _FluxArgumentGroup(argparse._ArgumentGroup):
    def add_argument(self, *args: Any, hidden_aliases: Any = (), **kwargs: Any) -> Any:
        return _add_with_hidden(super().add_argument, args, hidden_aliases, kwargs)


class _FluxMutuallyExclusiveGroup(argparse._MutuallyExclusiveGroup):
    def add_argument(self, *args: Any, hidden_aliases: Any = (), **kwargs: Any) -> Any:
        return _add_with_hidden(super().add_argument, args, hidden_aliases, kwargs)


class FluxArgumentParser(argparse.ArgumentParser):
    """ArgumentParser with ``allow_abbrev=False`` and Flux's help formatter.

    ``posix=True``: stop at the first non-option argument (see the module
    docstring); ``raw_description`` and ``argwidth`` choose the help
    layout unless ``formatter_class`` is given.
    """

    def __init__(self, *args: Any, posix: bool = False, raw_description: bool = False,
                 argwidth: int = 40, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class",
                          help_formatter(argwidth=argwidth, raw_description=raw_description))
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.posix = posix

    def add_argument(self, *args: Any, hidden_aliases: Any = (), **kwargs: Any) -> Any:
        return _add_with_hidden(super().add_argument, args, hidden_aliases, kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = _FluxArgumentGroup(self, *args, **kwargs)
        self._action_groups.append(group)
        return group

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        group = _FluxMutuallyExclusiveGroup(self, **kwargs)
        self._mutually_exclusive_groups.append(group)
        return group

    # -- posix mode

    def _is_option(self, token: str) -> bool:
        return self._parse_optional(token) is not None

    def _values_taken(self, action: argparse.Action, rest: Sequence[str]) -> int:
        """How many following arguments ACTION consumes as its values."""
        nargs = action.nargs
        if nargs is None:
            return 1
        if isinstance(nargs, int):
            return min(nargs, len(rest))
        if nargs == argparse.OPTIONAL:
            return 1 if rest and not self._is_option(rest[0]) else 0
        if nargs in (argparse.ZERO_OR_MORE, argparse.ONE_OR_MORE):
            count = 0
            for token in rest:
                if self._is_option(token):
                    break
                count += 1
            return count
        return 0   # flags (nargs=0) and REMAINDER

    def _split_posix(self, tokens: list[str]) -> tuple[list[str], list[str]]:
        """(option tokens, everything from the first non-option on)."""
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token == "--" or not token or token[0] not in self.prefix_chars \
                    or len(token) == 1:
                return tokens[:i], tokens[i:]
            if self._negative_number_matcher.match(token) \
                    and not self._has_negative_number_optionals:
                return tokens[:i], tokens[i:]
            i += 1
            is_long = token[1] in self.prefix_chars
            if (is_long and "=" in token) or (not is_long and len(token) > 2):
                continue   # the value is in this token
            action = self._option_string_actions.get(token)
            if action is not None:
                i += self._values_taken(action, tokens[i:])
        return tokens, []

    def parse_args(self, args: Sequence[str] | None = None,
                   namespace: Any = None) -> argparse.Namespace:
        if not self.posix:
            return super().parse_args(args, namespace)
        tokens = list(sys.argv[1:] if args is None else args)
        options, positionals = self._split_posix(tokens)
        result = super().parse_args(options, namespace)
        for action in self._actions:
            if action.nargs == argparse.REMAINDER:
                existing = getattr(result, action.dest, None) or []
                setattr(result, action.dest, [*existing, *positionals])
                return result
        if positionals:
            self.error("unrecognized arguments: " + " ".join(positionals))
        return result
