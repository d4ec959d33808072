"""flux.constraint.parser.ConstraintParser: RFC 35 queries to RFC 31 objects."""
from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flux.constraint
from flux.constraint.parser import ConstraintLexer, ConstraintParser, ConstraintSyntaxError


class PropertyParser(ConstraintParser):
    """A parser like the one behind ``--requires``."""

    operator_map = {None: "properties", "host": "hostlist", "hosts": "hostlist",
                    "rank": "ranks"}
    split_values = {"properties": ","}
    combined_terms = {"properties"}


@pytest.fixture(scope="module")
def parser() -> ConstraintParser:
    return ConstraintParser()


@pytest.fixture(scope="module")
def props() -> PropertyParser:
    return PropertyParser()


def test_package_exposes_parser_module() -> None:
    assert flux.constraint.parser.ConstraintParser is ConstraintParser
    assert issubclass(ConstraintSyntaxError, Exception)


@pytest.mark.parametrize("query,expected", [
    ("a:b", {"a": ["b"]}),
    ("a:b c:d", {"and": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b & c:d", {"and": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b && c:d", {"and": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b and c:d", {"and": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b&c:d", {"and": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b | c:d", {"or": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b || c:d", {"or": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b or c:d", {"or": [{"a": ["b"]}, {"c": ["d"]}]}),
    ("a:b|c:d|e:f", {"or": [{"a": ["b"]}, {"c": ["d"]}, {"e": ["f"]}]}),
    ("a:b c:d e:f", {"and": [{"a": ["b"]}, {"c": ["d"]}, {"e": ["f"]}]}),
    ("-a:b", {"not": [{"a": ["b"]}]}),
    ("not a:b", {"not": [{"a": ["b"]}]}),
    ("not (a:b | c:d)", {"not": [{"or": [{"a": ["b"]}, {"c": ["d"]}]}]}),
    ("(a:b)", {"a": ["b"]}),
    ("((a:b))", {"a": ["b"]}),
    ("-a:b c:d", {"and": [{"not": [{"a": ["b"]}]}, {"c": ["d"]}]}),
    ("not a:b c:d", {"and": [{"not": [{"a": ["b"]}]}, {"c": ["d"]}]}),
    # and binds tighter than or, juxtaposition included
    ("a:b | c:d e:f", {"or": [{"a": ["b"]}, {"and": [{"c": ["d"]}, {"e": ["f"]}]}]}),
    ("a:b | c:d & e:f", {"or": [{"a": ["b"]}, {"and": [{"c": ["d"]}, {"e": ["f"]}]}]}),
    ("a:b c:d | e:f", {"or": [{"and": [{"a": ["b"]}, {"c": ["d"]}]}, {"e": ["f"]}]}),
    ("(a:b | c:d) e:f", {"and": [{"or": [{"a": ["b"]}, {"c": ["d"]}]}, {"e": ["f"]}]}),
    ("a:b (c:d | e:f)", {"and": [{"a": ["b"]}, {"or": [{"c": ["d"]}, {"e": ["f"]}]}]}),
    ("a:b | -c:d", {"or": [{"a": ["b"]}, {"not": [{"c": ["d"]}]}]}),
    ("a:b|not c:d", {"or": [{"a": ["b"]}, {"not": [{"c": ["d"]}]}]}),
    # quoting and the "op: value" form
    ('a:"b c"', {"a": ["b c"]}),
    ("a:'b c' d:e", {"and": [{"a": ["b c"]}, {"d": ["e"]}]}),
    ("a: b", {"a": ["b"]}),
    ('a: "x y"', {"a": ["x y"]}),
    ("'a:b'", {"a": ["b"]}),
    ('a:"and"', {"a": ["and"]}),
    ("a:b-c", {"a": ["b-c"]}),
    ("a:-1", {"a": ["-1"]}),
    ("  a:b\t\n", {"a": ["b"]}),
    ("op.x+y@z-w:v", {"op.x+y@z-w": ["v"]}),
    ("a:b:c", {"a": ["b:c"]}),
])
def test_parse(parser: ConstraintParser, query: str, expected: dict) -> None:
    assert parser.parse(query) == expected


@pytest.mark.parametrize("query,expected", [
    ("foo", {"properties": ["foo"]}),
    ("foo bar", {"properties": ["foo", "bar"]}),
    ("foo,bar", {"properties": ["foo", "bar"]}),
    ("foo,bar baz", {"properties": ["foo", "bar", "baz"]}),
    ("^foo", {"properties": ["^foo"]}),
    ("-foo", {"not": [{"properties": ["foo"]}]}),
    ("host:n[1-4]", {"hostlist": ["n[1-4]"]}),
    ("hosts:n1", {"hostlist": ["n1"]}),
    ("rank:0-3", {"ranks": ["0-3"]}),
    ("foo host:n1", {"and": [{"properties": ["foo"]}, {"hostlist": ["n1"]}]}),
    # like Flux: a term after an "and" list joins the list, uncombined
    ("host:n1 foo bar", {"and": [{"hostlist": ["n1"]}, {"properties": ["foo"]},
                                 {"properties": ["bar"]}]}),
    ("foo|bar", {"or": [{"properties": ["foo"]}, {"properties": ["bar"]}]}),
    ("(foo|bar) baz", {"and": [{"or": [{"properties": ["foo"]}, {"properties": ["bar"]}]},
                               {"properties": ["baz"]}]}),
])
def test_subclass_defaults(props: PropertyParser, query: str, expected: dict) -> None:
    assert props.parse(query) == expected


@pytest.mark.parametrize("query,message", [
    ("", "Empty constraint query"),
    ("   ", "Empty constraint query"),
    ("foo", 'Missing required operator in "foo"'),
    ("a:b (", "Unclosed parenthesis in position 4"),
    ("(a:b", "Unclosed parenthesis in position 0"),
    ("a:b)", "Unmatched ')' at position 3"),
    ("a:b |", "Unexpected end of input in 'a:b |'"),
    ("a:b &", "Unexpected end of input"),
    ("not", "Unexpected end of input"),
    ("-", "Unexpected end of input"),
    ("-(a:b|c:d)", "Invalid token '(' at position 1"),
    ("| a:b", "Invalid token '|' at position 0"),
    ("a:b | | c:d", "Invalid token '|' at position 6"),
    ("()", "Invalid token ')' at position 1"),
    ("a:b --c:d", "Invalid token '-' at position 5"),
    ('a:"b', 'Unclosed quote (") at position 2'),
    ("a:'b", "Unclosed quote (') at position 2"),
    ("a:", "Missing argument to token 'a:'"),
    ("a: |", "Missing argument to token 'a:'"),
    ("a:''", "Missing argument to token 'a:'"),
    ("''", "Empty term at position 0"),
    (":b", "Missing operator before ':'"),
    ("a/b:c", "invalid character '/' in operator 'a/b:'"),
    ("a b:c", "Missing required operator"),
    ('"and":x', "'and' is a logical operator"),
])
def test_errors(parser: ConstraintParser, query: str, message: str) -> None:
    with pytest.raises(ConstraintSyntaxError, match=__import__("re").escape(message)):
        parser.parse(query)


def test_error_is_a_value_error(parser: ConstraintParser) -> None:
    with pytest.raises(ValueError):
        parser.parse("(a:b")


def test_non_string_query(parser: ConstraintParser) -> None:
    with pytest.raises(ConstraintSyntaxError, match="must be a string, not int"):
        parser.parse(5)  # type: ignore[arg-type]


def test_parser_is_reusable_after_errors(parser: ConstraintParser) -> None:
    with pytest.raises(ConstraintSyntaxError):
        parser.parse("(a:b")
    assert parser.parse("a:b") == {"a": ["b"]}
    with pytest.raises(ConstraintSyntaxError):
        parser.parse("a:b)")
    assert parser.parse("(a:b)") == {"a": ["b"]}


def test_results_are_independent(props: PropertyParser) -> None:
    first = props.parse("foo bar")
    first["properties"].append("changed")
    assert props.parse("foo bar") == {"properties": ["foo", "bar"]}


def test_lexer_tokens() -> None:
    lexer = ConstraintLexer()
    lexer.input("a:b && (c:'x y' || not -d)")
    kinds = [(t.type, t.value, t.lexpos) for t in iter(lexer.token, None)]
    assert kinds == [("TOKEN", "a:b", 0), ("AND", "&&", 4), ("LPAREN", "(", 7),
                     ("TOKEN", "c:x y", 8), ("OR", "||", 16), ("NOT", "not", 19),
                     ("NEGATE", "-", 23), ("TOKEN", "d", 24), ("RPAREN", ")", 25)]


def test_import_constraint_is_light_and_parser_loads_ply() -> None:
    code = ("import sys, flux.constraint; a = 'ply' in sys.modules; "
            "from flux.constraint.parser import ConstraintParser; "
            "ConstraintParser().parse('a:b'); print(a, 'ply.yacc' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
    assert proc.stderr == ""  # ply builds its tables silently


# -- properties: a printed query parses back to the same object ----------------------

names = st.text(alphabet="abcxyz", min_size=1, max_size=4).filter(
    lambda s: s not in ("and", "or", "not"))


def leaf() -> st.SearchStrategy[dict]:
    return st.builds(lambda op, v: {op: [v]}, names, names)


trees = st.recursive(
    leaf(),
    lambda kids: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(kids, min_size=2, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(kids, min_size=2, max_size=3)),
        st.builds(lambda x: {"not": [x]}, kids),
    ),
    max_leaves=8,
)


def to_query(node: dict, style: int) -> str:
    (op, args), = node.items()
    if op == "and":
        sep = [" ", " & ", " && ", " and "][style % 4]
        return "(" + sep.join(to_query(a, style + 1) for a in args) + ")"
    if op == "or":
        sep = [" | ", "||", " or "][style % 3]
        return "(" + sep.join(to_query(a, style + 1) for a in args) + ")"
    if op == "not":
        return f"not {to_query(args[0], style + 1)}"
    return f"{op}:{args[0]}"


def normalize(node: dict) -> dict:
    """Flatten nested and/or the way the parser does."""
    (op, args), = node.items()
    if op in ("and", "or"):
        flat = []
        for a in args:
            a = normalize(a)
            if op in a and len(a) == 1 and a is not None:
                flat.extend(a[op])
            else:
                flat.append(a)
        return {op: flat}
    if op == "not":
        return {"not": [normalize(args[0])]}
    return node


def evaluate(node: dict, truth: dict[tuple[str, str], bool]) -> bool:
    (op, args), = node.items()
    if op == "and":
        return all(evaluate(a, truth) for a in args)
    if op == "or":
        return any(evaluate(a, truth) for a in args)
    if op == "not":
        return not evaluate(args[0], truth)
    return all(truth.get((op, v), False) for v in args)


@given(trees, st.integers(0, 11), st.dictionaries(st.tuples(names, names), st.booleans()))
def test_printed_query_means_the_same(tree: dict, style: int,
                                      truth: dict[tuple[str, str], bool]) -> None:
    parsed = ConstraintParser().parse(to_query(tree, style))
    assert evaluate(parsed, truth) == evaluate(tree, truth)


@given(st.text(alphabet="ab:()|&- '\"n", max_size=12))
def test_any_input_parses_or_raises_syntax_error(query: str) -> None:
    try:
        result = PropertyParser().parse(query)
    except ConstraintSyntaxError:
        return
    assert isinstance(result, dict) and len(result) == 1
