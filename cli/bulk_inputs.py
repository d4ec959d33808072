"""The inputs of ``flux bulksubmit`` and their substitution into a command line.

``flux bulksubmit [OPTIONS] COMMAND... [::: A B ...] [:::+ C D ...]
[:::: FILE] [::::+ FILE]`` submits one job per combination of its input
lists, GNU parallel style (flux-bulksubmit(1); ``specs/bulksubmit.md``):

- ``:::`` starts a list given on the command line, ``::::`` names a file
  holding one (``-`` is stdin); with no list at all, stdin is the list.
  A file is split on newlines, or on any whitespace with ``--sep=none``,
  or on ``--sep``'s string;
- lists combine as a cartesian product, the first varying slowest;
  ``:::+`` / ``::::+`` link a list to the one before it instead: its
  items are paired with that list's in order, cycled if it is shorter;
- each argument (options included) is formatted with ``str.format``:
  ``{}``/``{0}``... are the inputs, ``{seq}``/``{seq1}`` the combination's
  number from 0/1, and each input has the attributes ``.%`` (extension
  removed), ``./`` (basename), ``./%`` (basename, extension removed),
  ``.//`` (dirname) and one per ``--define=NAME=CODE`` (CODE evaluated
  with the input as ``x``).  ``{cc}`` is kept for a second pass, which
  puts in the ``--cc``/``--bcc`` id (or nothing).

Everything here is pure but for reading the named files.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import product
from typing import Any

__all__ = ["DELIMITERS", "split_inputs", "read_list", "combinations", "Input",
           "compile_defines", "substitute", "substitute_cc"]

#: delimiter -> (the list is a file, the list is linked to the previous one)
DELIMITERS = {":::": (False, False), ":::+": (False, True),
              "::::": (True, False), "::::+": (True, True)}


class InputSpec:
    """One input list as given: its items (or file name), and whether it is linked."""

    __slots__ = ("items", "path", "linked")

    def __init__(self, items: list[str] | None, path: str | None, linked: bool) -> None:
        self.items = items
        self.path = path
        self.linked = linked

    def __repr__(self) -> str:
        return f"InputSpec(items={self.items!r}, path={self.path!r}, linked={self.linked})"


def split_inputs(args: Sequence[str]) -> tuple[list[str], list[InputSpec]]:
    """ARGS as (the command template, the input lists); ValueError if a file is missing."""
    template: list[str] = []
    specs: list[InputSpec] = []
    i = 0
    while i < len(args) and args[i] not in DELIMITERS:
        template.append(args[i])
        i += 1
    while i < len(args):
        is_file, linked = DELIMITERS[args[i]]
        i += 1
        items: list[str] = []
        while i < len(args) and args[i] not in DELIMITERS:
            items.append(args[i])
            i += 1
        if is_file:
            if len(items) != 1:
                delim = "::::+" if linked else "::::"
                raise ValueError(f"{delim} takes exactly one file name, not {len(items)}")
            specs.append(InputSpec(None, items[0], linked))
        else:
            specs.append(InputSpec(items, None, linked))
    if specs and specs[0].linked:
        raise ValueError("the first input list cannot be linked (:::+ or ::::+)")
    return template, specs


def read_list(text: str, sep: str | None) -> list[str]:
    """The items of TEXT: lines (SEP None), whitespace-separated words (SEP "none"),
    or the pieces between SEPs; empty items dropped."""
    if sep is None:
        items = text.split("\n")
    elif sep == "none":
        items = text.split()
    else:
        items = text.split(sep)
    return [item for item in items if item]


def load_lists(specs: Sequence[InputSpec], sep: str | None,
               read_stdin: Callable[[], str]) -> list[tuple[list[str], bool]]:
    """Each list's items and whether it is linked; stdin is read once if named or if
    there is no list at all."""
    stdin_text: list[str] = []

    def stdin() -> str:
        if not stdin_text:
            stdin_text.append(read_stdin())
        return stdin_text[0]

    if not specs:
        return [(read_list(stdin(), sep), False)]
    lists = []
    for spec in specs:
        if spec.items is not None:
            lists.append((list(spec.items), spec.linked))
            continue
        if spec.path == "-":
            text = stdin()
        else:
            try:
                with open(spec.path or "", encoding="utf-8", errors="surrogateescape") as fh:
                    text = fh.read()
            except OSError as exc:
                raise ValueError(f"{spec.path}: {exc.strerror}") from None
        lists.append((read_list(text, sep), spec.linked))
    return lists


def combinations(lists: Sequence[tuple[Sequence[str], bool]]) -> list[tuple[str, ...]]:
    """Every combination of the inputs: linked lists pair up with the list before
    them (cycled when shorter), the groups so formed combine as a product."""
    groups: list[list[tuple[str, ...]]] = []
    for items, linked in lists:
        if linked and groups:
            rows = groups[-1]
            if not items:
                groups[-1] = []
                continue
            groups[-1] = [row + (items[n % len(items)],) for n, row in enumerate(rows)]
        else:
            groups.append([(item,) for item in items])
    return [sum(parts, ()) for parts in product(*groups)]


class Input(str):
    """An input string, with the substitution attributes of flux-bulksubmit(1)."""

    __slots__ = ("defines",)

    def __new__(cls, text: str, defines: Mapping[str, Callable[[str], Any]]) -> "Input":
        obj = super().__new__(cls, text)
        obj.defines = defines
        return obj

    def __getattr__(self, name: str) -> Any:
        text = str(self)
        if name == "%":
            return os.path.splitext(text)[0]
        if name == "/":
            return os.path.basename(text)
        if name == "/%":
            return os.path.splitext(os.path.basename(text))[0]
        if name == "//":
            return os.path.dirname(text)
        fn = self.defines.get(name)
        if fn is None:
            raise AttributeError(f"input has no attribute '{name}' (see --define)")
        return fn(text)


def compile_defines(defines: Iterable[str]) -> dict[str, Callable[[str], Any]]:
    """``--define=NAME=CODE`` values as functions of the input ``x``; ValueError names a
    bad one."""
    out: dict[str, Callable[[str], Any]] = {}
    for text in defines:
        name, eq, code = text.partition("=")
        if not eq or not name.isidentifier() or not code:
            raise ValueError(f"--define: expected NAME=CODE, got '{text}'")
        try:
            compiled = compile(code, f"--define={name}", "eval")
        except SyntaxError as exc:
            raise ValueError(f"--define={name}: {exc.msg}") from None

        def fn(x: str, _code: Any = compiled, _name: str = name) -> Any:
            try:
                return eval(_code, {"__builtins__": __builtins__}, {"x": x})  # noqa: S307
            except Exception as exc:  # the user's code: report, do not crash
                raise ValueError(f"--define={_name}: {type(exc).__name__}: {exc}") from None

        out[name] = fn
    return out


def substitute(template: Sequence[str], inputs: Sequence[str], seq: int,
               defines: Mapping[str, Callable[[str], Any]]) -> list[str]:
    """TEMPLATE with the inputs put in (``{cc}`` kept); ValueError names a bad field."""
    args = [Input(value, defines) for value in inputs]
    out = []
    for token in template:
        try:
            out.append(token.format(*args, seq=seq, seq1=seq + 1, cc="{cc}"))
        except IndexError:
            raise ValueError(f"'{token}': a replacement index is out of range "
                             f"(there are {len(inputs)} input(s))") from None
        except KeyError as exc:
            raise ValueError(f"'{token}': unknown replacement field {exc} "
                             "(write {{ and }} for literal braces)") from None
        except (AttributeError, ValueError) as exc:
            raise ValueError(f"'{token}': {exc}") from None
    return out


def substitute_cc(tokens: Sequence[str], cc: int | str | None) -> list[str]:
    """The second pass: ``{cc}`` becomes CC (or nothing without --cc/--bcc)."""
    value = "" if cc is None else str(cc)
    return [token.replace("{cc}", value) for token in tokens]
