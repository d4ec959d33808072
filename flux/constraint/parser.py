"""RFC 35 constraint query syntax, parsed with ply into RFC 31 constraint objects.

A query is terms joined by logical operators::

    term     [op:]value          a value may be quoted: host:"a b", 'x y'
    and      juxtaposition, &, &&, and
    or       |, ||, or
    not      not EXPR            negates an expression
             -term               negates one term (-(a|b) is an error)
    group    ( EXPR )

``not``/``-`` bind tightest, then *and* (juxtaposition included), then
*or*: ``a|b c`` is ``a | (b & c)``.  Each term becomes ``{op: [value]}``.

Subclasses tune the terms:

- ``operator_map``: operator name -> RFC 31 operator; the key ``None``
  gives the operator of a term without ``op:`` (by default a term must
  name its operator);
- ``split_values``: operator -> separator splitting its value into
  several (``{"properties": ","}`` makes ``a,b`` two values);
- ``combined_terms``: operators whose terms joined by *and* merge into one
  (``a b`` -> ``{"properties": ["a", "b"]}``).

Every error is a ``ConstraintSyntaxError`` (a ValueError) naming what is
wrong and where (0-based positions in the query).
"""
from __future__ import annotations

import copy
import re
import threading
from typing import Any, Iterator

__all__ = ["ConstraintParser", "ConstraintLexer", "ConstraintSyntaxError"]


class ConstraintSyntaxError(ValueError):
    """A constraint query that is not valid RFC 35 syntax."""


# -- lexer ------------------------------------------------------------------------

_KEYWORDS = {"and": "AND", "or": "OR", "not": "NOT"}
_SPECIAL = "()|&\"'"
_OPERATOR_OK = re.compile(r"[\w.+@-]+")


class _Token:
    """What ply's parser needs of a token (ply's LexToken shape)."""

    __slots__ = ("type", "value", "lineno", "lexpos", "lexer")

    def __init__(self, type_: str, value: str, pos: int) -> None:
        self.type = type_
        self.value = value
        self.lineno = 1
        self.lexpos = pos
        self.lexer: Any = None

    def __repr__(self) -> str:
        return f"LexToken({self.type},{self.value!r},1,{self.lexpos})"


class ConstraintLexer:
    """Tokens of an RFC 35 query: TOKEN, AND, OR, NOT, NEGATE, LPAREN, RPAREN.

    A TOKEN is a run of characters other than whitespace, ``()|&`` and
    quotes, with quoted strings joined into it (``op:"a b"`` is one token,
    ``op:a b``'s value is ``a``).  A word ending in ``:`` takes the next
    word as its value (``op: value``).  ``and``, ``or`` and ``not`` are
    keywords only when unquoted and alone.
    """

    tokens = ("TOKEN", "AND", "OR", "NOT", "NEGATE", "LPAREN", "RPAREN")

    def __init__(self, **kwargs: Any) -> None:
        self.data = ""
        self._tokens: Iterator[_Token] = iter(())
        self.parens_level = 0
        self.last_lparens: list[int] = []

    def input(self, data: str) -> None:
        if not isinstance(data, str):
            raise ConstraintSyntaxError(
                f"constraint query must be a string, not {type(data).__name__}")
        self.data = data
        self.parens_level = 0
        self.last_lparens = []
        self._tokens = self._scan()

    def token(self) -> _Token | None:
        return next(self._tokens, None)

    def __iter__(self) -> Iterator[_Token]:
        return self._tokens

    def _word(self, pos: int) -> tuple[str, bool, int]:
        """The token starting at ``pos``: (value, had quotes, end position)."""
        data = self.data
        n = len(data)
        parts: list[str] = []
        quoted = False
        i = pos
        while i < n:
            ch = data[i]
            if ch in ("'", '"'):
                end = data.find(ch, i + 1)
                if end < 0:
                    raise ConstraintSyntaxError(f"Unclosed quote ({ch}) at position {i}")
                parts.append(data[i + 1:end])
                quoted = True
                i = end + 1
            elif ch.isspace() or ch in "()|&":
                break
            else:
                j = i
                while j < n and not data[j].isspace() and data[j] not in _SPECIAL:
                    j += 1
                parts.append(data[i:j])
                i = j
        return "".join(parts), quoted, i

    def _skip_space(self, i: int) -> int:
        while i < len(self.data) and self.data[i].isspace():
            i += 1
        return i

    def _scan(self) -> Iterator[_Token]:
        data = self.data
        n = len(data)
        i = self._skip_space(0)
        while i < n:
            ch = data[i]
            if ch == "(":
                self.parens_level += 1
                self.last_lparens.append(i)
                yield _Token("LPAREN", ch, i)
                i += 1
            elif ch == ")":
                if self.parens_level == 0:
                    raise ConstraintSyntaxError(f"Unmatched ')' at position {i}")
                self.parens_level -= 1
                self.last_lparens.pop()
                yield _Token("RPAREN", ch, i)
                i += 1
            elif ch in "|&":
                end = i + 2 if data[i + 1:i + 2] == ch else i + 1
                yield _Token("OR" if ch == "|" else "AND", data[i:end], i)
                i = end
            elif ch == "-":
                yield _Token("NEGATE", ch, i)
                i += 1
            else:
                value, quoted, end = self._word(i)
                if not quoted and value in _KEYWORDS:
                    yield _Token(_KEYWORDS[value], value, i)
                    i = self._skip_space(end)
                    continue
                if not quoted and value.endswith(":"):
                    # "op: value" -- the value is the next word
                    nxt = self._skip_space(end)
                    if nxt >= n or data[nxt] in "()|&":
                        raise ConstraintSyntaxError(f"Missing argument to token '{value}' "
                                                    f"at position {i}")
                    more, _, end = self._word(nxt)
                    value += more
                if not value:
                    raise ConstraintSyntaxError(f"Empty term at position {i}")
                yield _Token("TOKEN", value, i)
                i = end
            i = self._skip_space(i)


# -- grammar ------------------------------------------------------------------------


class _Grammar:
    """ply grammar; each action asks the ConstraintParser doing the parse
    (``p.parser.owner``) to build the result, so one table serves all."""

    tokens = ConstraintLexer.tokens
    # Tokens that can start an expression share the *and* level, so after
    # ``a | b`` another term is joined to ``b`` first (``a | (b c)``) and
    # after ``a b`` or ``not a`` it is joined to the whole (left to right).
    precedence = (
        ("left", "OR"),
        ("left", "AND", "TOKEN", "LPAREN", "NOT", "NEGATE"),
    )

    def p_expression_juxtaposed(self, p: Any) -> None:
        """expression : expression expression %prec AND"""
        p[0] = p.parser.owner.combine_like_terms(p[1], p[2])

    def p_expression_and(self, p: Any) -> None:
        """expression : expression AND expression"""
        p[0] = p.parser.owner.combine_like_terms(p[1], p[3])

    def p_expression_or(self, p: Any) -> None:
        """expression : expression OR expression"""
        left = p[1]
        if len(left) == 1 and "or" in left:
            left["or"].append(p[3])
            p[0] = left
        else:
            p[0] = {"or": [left, p[3]]}

    def p_expression_not(self, p: Any) -> None:
        """expression : NOT expression
                      | NEGATE term"""
        p[0] = {"not": [p[2]]}

    def p_expression_group(self, p: Any) -> None:
        """expression : LPAREN expression RPAREN"""
        p[0] = p[2]

    def p_expression_term(self, p: Any) -> None:
        """expression : term"""
        p[0] = p[1]

    def p_term(self, p: Any) -> None:
        """term : TOKEN"""
        p[0] = p.parser.owner.term(p[1], p.lexpos(1))

    def p_error(self, tok: Any) -> None:  # replaced per parser
        raise ConstraintSyntaxError("syntax error")


_BASE: Any = None
_BASE_LOCK = threading.Lock()


def _base_parser() -> Any:
    """The ply parser with the grammar's tables, built once per process."""
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            import ply.yacc as yacc

            _BASE = yacc.yacc(module=_Grammar(), debug=False, write_tables=False,
                              errorlog=yacc.NullLogger(), tabmodule="_flux_constraint_nofile")
        return _BASE


# -- parser -------------------------------------------------------------------------


class ConstraintParser:
    """Parse RFC 35 queries to RFC 31 constraint dicts: ``parse(query)``."""

    operator_map: dict[Any, str] = {}
    split_values: dict[str, str] = {}
    combined_terms: set[str] = set()

    def __init__(self, lexer: Any = None, optimize: bool = True, debug: bool = False,
                 write_tables: bool = False, **kw_args: Any) -> None:
        # optimize/debug/write_tables are accepted for Flux compatibility:
        # the tables are built in memory once per process.
        self.lexer = ConstraintLexer() if lexer is None else lexer
        self.tokens = ConstraintLexer.tokens
        self.query: str | None = None
        self.parser = copy.copy(_base_parser())
        self.parser.owner = self
        self.parser.errorfunc = self.p_error

    def parse(self, query: str, **kw_args: Any) -> dict[str, Any]:
        """The RFC 31 object for ``query``; ConstraintSyntaxError if invalid."""
        if not isinstance(query, str):
            raise ConstraintSyntaxError(
                f"constraint query must be a string, not {type(query).__name__}")
        self.query = query
        if not query.strip():
            raise ConstraintSyntaxError("Empty constraint query")
        kw_args.pop("debug", None)
        return self.parser.parse(query, lexer=self.lexer, **kw_args)

    def p_error(self, tok: Any) -> None:
        if tok is None:
            if getattr(self.lexer, "parens_level", 0) > 0:
                pos = self.lexer.last_lparens[-1]
                raise ConstraintSyntaxError(f"Unclosed parenthesis in position {pos}")
            raise ConstraintSyntaxError(f"Unexpected end of input in '{self.query}'")
        raise ConstraintSyntaxError(f"Invalid token '{tok.value}' at position {tok.lexpos}")

    @staticmethod
    def invalid_operator(op: str) -> str | None:
        """The first character not allowed in an operator name, or None."""
        match = re.search(r"[^\w.+@-]", op)
        return match[0] if match else None

    def term(self, text: str, pos: int = 0) -> dict[str, list[str]]:
        """``{op: [value, ...]}`` for one ``[op:]value`` term."""
        op, colon, value = text.partition(":")
        if not colon:
            if None not in self.operator_map:
                raise ConstraintSyntaxError(f'Missing required operator in "{text}"')
            op, value = self.operator_map[None], text
        else:
            if not op:
                raise ConstraintSyntaxError(f"Missing operator before ':' in '{text}' "
                                            f"at position {pos}")
            op = self.operator_map.get(op, op)
            if not value:
                raise ConstraintSyntaxError(f"Missing argument to token '{op}:' "
                                            f"at position {pos}")
        bad = self.invalid_operator(op)
        if bad:
            raise ConstraintSyntaxError(f"invalid character '{bad}' in operator '{op}:'")
        if op in _KEYWORDS:
            raise ConstraintSyntaxError(f"'{op}' is a logical operator, not a term "
                                        f"operator, in '{text}' at position {pos}")
        separator = self.split_values.get(op)
        values = value.split(separator) if separator else [value]
        return {op: values}

    def combine_like_terms(self, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
        """``left`` and ``right`` joined by *and*, as Flux joins them.

        An *and* on the left takes ``right`` as one more member; otherwise
        two terms of one operator in ``combined_terms`` merge their values.
        """
        if len(left) == 1 and "and" in left:
            left["and"].append(right)
            return left
        lkey = next(iter(left))
        rkey = next(iter(right))
        if lkey == rkey and lkey in self.combined_terms:
            left[lkey].extend(right[rkey])
            return left
        return {"and": [left, right]}
