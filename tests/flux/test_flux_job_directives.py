"""Submission directives (RFC 36): flux.job.directives, a pure parser."""
from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.job.directives import DirectiveError, directive_words, parse_directives

# -- RFC 36's own examples ----------------------------------------------------------


def test_shell_script_with_trailing_comments():
    text = ("#!/bin/sh\n"
            "#FLUX: -N4                  # Request four nodes\n"
            "#FLUX: --queue=batch        # Submit to the batch queue\n"
            "#FLUX: --job-name=app001    # Set an explicit job name\n"
            "flux run -N4 app\n")
    assert directive_words(text) == ["-N4", "--queue=batch", "--job-name=app001"]


def test_python_docstring_with_a_multiline_literal():
    text = ('#!/usr/bin/env python3\n'
            'def main():\n'
            '    """\n'
            '    flux: -N4\n'
            '    flux: --queue=batch\n'
            '    flux: --job-name="my python job"\n'
            '    \n'
            '    # Set some arbitrary user data:\n'
            "    flux: --setattr=user.data='''\n"
            '    flux: x, y, z\n'
            '    flux: a, b, c\n'
            "    flux: '''\n"
            '    """\n'
            '    run()\n')
    assert directive_words(text) == ["-N4", "--queue=batch", "--job-name=my python job",
                                     "--setattr=user.data=x, y, z\na, b, c\n"]


def test_lua_comments_several_options_per_line():
    text = ("#!/usr/bin/lua\n--\n-- flux: -N1 --exclusive\n-- flux: --output=job.out\n"
            "local app = require 'app'\n")
    assert directive_words(text) == ["-N1", "--exclusive", "--output=job.out"]


def test_plain_comments_sharing_the_prefix_do_not_end_the_directives():
    text = "#!/bin/sh\n# Set flux directives\n#FLUX: -N1\n# Set job name:\n#FLUX: --job-name=test\n"
    assert directive_words(text) == ["-N1", "--job-name=test"]
    text = '#!/usr/bin/env python3\n"""\nflux: --nodes=4\n\nSet a value:\nflux: --setattr=user.foo="hello, earth"\n"""\n'
    assert directive_words(text) == ["--nodes=4", "--setattr=user.foo=hello, earth"]


def test_quoting_and_triple_quotes():
    assert directive_words("# flux: --setattr=user.data='{\"option\": \"arg\"}'\n") == \
        ['--setattr=user.data={"option": "arg"}']
    assert directive_words("# flux: --job-name='''It's a \"job\"'''\n") == \
        ['--job-name=It\'s a "job"']
    text = ('# flux: --setattr=user.foo="""{"key": 42}"""\n'
            "# flux: --setattr=user.bar='''It's a \"job\"'''\n")
    assert directive_words(text) == ['--setattr=user.foo={"key": 42}',
                                     '--setattr=user.bar=It\'s a "job"']


def test_multiline_literal_is_dedented_and_keeps_its_last_newline():
    text = ('# flux: --setattr=user.conf="""\n'
            "# flux: [config]\n"
            '# flux:   item = "foo"\n'
            '# flux: """\n')
    assert directive_words(text) == ['--setattr=user.conf=[config]\n  item = "foo"\n']


def test_no_directives_and_line_numbers():
    assert directive_words("#!/bin/sh\nhostname\n") == []
    found = parse_directives("#!/bin/sh\n\n#flux: -N1\n#flux: -n2 -c1\nhostname\n")
    assert [(d.lineno, d.words) for d in found] == [(3, ("-N1",)), (4, ("-n2", "-c1"))]


# -- errors name the line -------------------------------------------------------------


@pytest.mark.parametrize("text, lineno, words", [
    ("#!/bin/sh\n#FLUX: -N1\nhostname; date\n#FLUX: --job-name=test\n", 4, "orphan directive"),
    ("# flux: -N4\n#FLUX: -c2\n", 2, "differs"),
    ("# flux: hello\n", 1, "unknown directive 'hello'"),
    ("# flux: -N1\n# flux: -- myscript\n", 2, "'--' is not allowed"),
    ('# flux: --job-name="abc\n', 1, "No closing quotation"),
    ('# flux: --x="""\n# flux: abc\n', 1, "unterminated"),
    ('# flux: --x="""\nabc\n# flux: """\n', 2, "must all start with"),
    ('# flux: --x="""abc\n', 1, "unterminated"),
])
def test_errors(text, lineno, words):
    with pytest.raises(DirectiveError) as err:
        parse_directives(text)
    assert err.value.lineno == lineno
    assert words in str(err.value) and str(err.value).startswith(f"line {lineno}: ")


# -- any options survive being written as directives ---------------------------------

_word = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
    # what the parser itself gives meaning to, inside a shell-quoted word
    st.lists(st.sampled_from(['"""', "'''", "#", "'", '"', "\\", " ", "a"]),
             min_size=1, max_size=6).map("".join))
_option = st.builds(lambda name, value: f"--{name}={value}",
                    st.from_regex(r"[a-z][a-z-]{0,8}", fullmatch=True), _word)


@given(st.lists(st.lists(_option, min_size=1, max_size=3), min_size=1, max_size=5),
       st.sampled_from(["#flux:", "# flux: ", "#FLUX: ", "-- flux:", "    flux: "]))
def test_roundtrip(lines, sentinel):
    # a '#' that would start a comment (at a word's start, or, for shlex, anywhere
    # outside quotes) is quoted by shlex.join, so every word comes back as written
    text = "#!/bin/sh\n" + "".join(f"{sentinel}{shlex.join(ws)}\n" for ws in lines) + "run\n"
    assert directive_words(text) == [w for ws in lines for w in ws]
