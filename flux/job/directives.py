"""Submission directives embedded in a batch script (RFC 36).

A directive is a line whose *sentinel* (a prefix of non-alphanumeric
characters, then ``flux:`` or ``FLUX:``) is followed by options for the
submitting command, e.g. ``#flux: -N4 --job-name=app``.  The first such
line fixes the sentinel for the file; directives continue, possibly mixed
with blank lines and other lines that start with the same prefix (plain
comments), until the first line that does not; a directive after that, or
one with another sentinel, is an error.  Within a directive, ``#`` starts
a comment, POSIX shell quoting applies, and a triple-quoted string (``\"\"\"``
or ``'''``) is taken literally, across lines when it opens at the end of
one: its lines, each behind the sentinel, are dedented and joined with
newlines, up to the closing quotes at the end of a line.

``parse_directives(text)`` returns the option words in order, or raises
``DirectiveError`` naming the line.  Pure: no I/O.
"""
from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass

__all__ = ["Directive", "DirectiveError", "directive_words", "parse_directives"]

_SENTINEL = re.compile(r"^([^\w]*)(flux|FLUX):")
_TRIPLE = ('"""', "'''")


class DirectiveError(ValueError):
    """A malformed directive; ``lineno`` is 1-based."""

    def __init__(self, lineno: int, message: str) -> None:
        super().__init__(f"line {lineno}: {message}")
        self.lineno = lineno
        self.message = message


@dataclass(frozen=True, slots=True)
class Directive:
    lineno: int          # of its first line
    words: tuple[str, ...]


def _quote_literal(text: str) -> str:
    """TEXT as one single-quoted shell word (a ``'`` in it closed and reopened)."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _shellify(lineno: int, text: str) -> tuple[str, str | None]:
    """TEXT with each triple-quoted string (outside shell quotes) turned into one
    single-quoted shell word, and comments cut; plus the triple quote left open
    at the end of TEXT, if one is (a multi-line literal), else None."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        triple = text[i:i + 3]
        if triple in _TRIPLE:
            end = text.find(triple, i + 3)
            if end < 0:
                if text[i + 3:].strip():
                    raise DirectiveError(lineno, f"unterminated {triple} string")
                return "".join(out), triple
            out.append(_quote_literal(text[i + 3:end]))
            i = end + 3
            continue
        if c == "#":
            break                   # a comment, to the end of the line
        if c in "'\"":
            end = i + 1
            while end < n and text[end] != c:
                end += 2 if c == '"' and text[end] == "\\" else 1
            out.append(text[i:end + 1])
            i = end + 1
            continue
        if c == "\\":
            out.append(text[i:i + 2])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out), None


def _words(lineno: int, shell: str, raw: str) -> list[str]:
    try:
        return shlex.split(shell)
    except ValueError as exc:
        raise DirectiveError(lineno, f"{exc}: {raw.strip()}") from None


def parse_directives(text: str) -> list[Directive]:
    """The directives of a script, in order (DirectiveError names a bad line)."""
    lines = text.splitlines()
    sentinel = prefix = None
    directives: list[Directive] = []
    stopped_at = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        match = _SENTINEL.match(line)
        if sentinel is None:
            if match is None:
                continue
            prefix, sentinel = match.group(1), match.group(0)
        elif stopped_at:
            if match is not None:
                raise DirectiveError(lineno, f"orphan directive (directives end at line "
                                             f"{stopped_at}, the first line not starting "
                                             f"with {prefix!r})")
            continue
        elif match is None or not line.startswith(sentinel):
            if match is not None:
                raise DirectiveError(lineno, f"sentinel {match.group(0)!r} differs from the "
                                             f"file's first one, {sentinel!r}")
            if line.strip() and not line.startswith(prefix):  # type: ignore[arg-type]
                stopped_at = lineno
            continue
        body = line[len(sentinel):]
        shell, opener = _shellify(lineno, body)
        if opener is not None:
            # a literal over the following directive lines, up to the closing quotes
            parts: list[str] = []
            while True:
                if i >= len(lines):
                    raise DirectiveError(lineno, f"unterminated {opener} string")
                more = lines[i]
                i += 1
                if not more.startswith(sentinel):
                    raise DirectiveError(i, f"a {opener} string's lines must all start "
                                            f"with {sentinel!r}")
                part = more[len(sentinel):].rstrip()
                if part.endswith(opener):
                    last = part[:-3]
                    if last.strip():
                        parts.append(last)
                    break
                parts.append(part)
            literal = textwrap.dedent("\n".join(parts) + "\n") if parts else ""
            shell += _quote_literal(literal)
        words = _words(lineno, shell, body)
        if words and not words[0].startswith("-"):
            raise DirectiveError(lineno, f"unknown directive {words[0]!r} (a directive "
                                         "is options, starting with '-')")
        if "--" in words:
            # it would end the options: the words after it, and the command line's own,
            # would become the script and its arguments
            raise DirectiveError(lineno, "'--' is not allowed in a directive")
        if words:
            directives.append(Directive(lineno, tuple(words)))
    return directives


def directive_words(text: str) -> list[str]:
    """Every directive's words, in order: options to put before the command line's."""
    return [word for d in parse_directives(text) for word in d.words]
