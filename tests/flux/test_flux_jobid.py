"""RFC 19 job ids: every encoding, the decode order, and bad input (specs/jobid.md)."""
from __future__ import annotations

import errno
import locale
import pickle
from typing import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.job.JobID import ENCODINGS, JOBID_MAX, JobID, JobIDError, id_encode, id_parse

F58_VECTORS = [
    (0, "ƒ1"), (1, "ƒ2"), (57, "ƒz"), (1234, "ƒNH"), (1888, "ƒZZ"), (3363, "ƒzz"),
    (3364, "ƒ211"), (4369, "ƒ2JL"), (65535, "ƒLUv"), (4294967295, "ƒ7YXq9G"),
    (633528662, "ƒxyzzy"), (6731191091817518, "ƒuZZybuNNy"),
    (6787342413402046, "ƒuzzybunny"), (2**64 - 2, "ƒjpXCZedGfVP"),
    (2**64 - 1, "ƒjpXCZedGfVQ"),
]

WORDS_VECTORS = [
    (0, "academy-academy-academy--academy-academy-academy"),
    (1, "acrobat-academy-academy--academy-academy-academy"),
    (65535, "nevada-archive-academy--academy-academy-academy"),
    (6787342413402046, "cake-plume-nepal--neuron-pencil-academy"),
    (2**64 - 1, "natural-analyze-verbal--natural-analyze-verbal"),
]

EMOJI_VECTORS = [(0, "😃"), (1, "😄"), (65535, "💁📚")]

DOTHEX_VECTORS = [
    (1, "0000.0000.0000.0001"),
    (0xDEADBEEF, "0000.0000.dead.beef"),
    (6731191091817518, "0017.e9fb.8df1.6c2e"),
    (0xEDAF97D000000, "000e.daf9.7d00.0000"),
]


@pytest.fixture(autouse=True)
def utf8_f58(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a UTF-8 locale and no ASCII override unless a test sets one."""
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII", raising=False)
    saved = locale.setlocale(locale.LC_CTYPE)
    for name in ("C.UTF-8", "en_US.UTF-8"):
        try:
            locale.setlocale(locale.LC_CTYPE, name)
            break
        except locale.Error:
            continue
    else:
        pytest.skip("no UTF-8 locale available to test the ƒ prefix")
    yield
    locale.setlocale(locale.LC_CTYPE, saved)


@pytest.mark.parametrize("value,f58", F58_VECTORS)
def test_f58_vectors_encode_and_decode_with_either_prefix(value: int, f58: str) -> None:
    assert id_encode(value) == f58
    assert JobID(value).f58 == f58
    assert id_parse(f58) == value
    assert id_parse("f" + f58[1:]) == value


def test_f58_leading_ones_are_zeros() -> None:
    assert id_parse("f111") == 0
    assert id_parse("ƒ12") == 1


@pytest.mark.parametrize("bad", ["f0", "fO", "fI", "f", "flux", "ƒ", "fl"])
def test_invalid_f58_is_rejected_naming_the_string(bad: str) -> None:
    with pytest.raises(JobIDError, match=f"invalid jobid '{bad}'"):
        id_parse(bad)


def test_f58_overflowing_64_bits_is_rejected() -> None:
    with pytest.raises(JobIDError, match="exceeds 64 bits"):
        id_parse("ƒjpXCZedGfVR")


def test_force_ascii_env_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    jobid = JobID(1234)
    assert jobid.f58 == "ƒNH"
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    assert jobid.f58 == "fNH"
    assert str(jobid) == "fNH"
    assert id_encode(1234, "f58") == "fNH"
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII")
    assert jobid.f58 == "ƒNH"


def test_non_utf8_locale_uses_ascii_prefix() -> None:
    locale.setlocale(locale.LC_CTYPE, "C")
    assert JobID(1234).f58 == "fNH"


def test_f58plain_always_ascii() -> None:
    assert JobID(1234).f58plain == "fNH"
    assert id_encode(1234, "f58plain") == "fNH"


@pytest.mark.parametrize("value,words", WORDS_VECTORS)
def test_words_vectors(value: int, words: str) -> None:
    assert JobID(value).words == words
    assert id_parse(words) == value


def test_words_decode_is_case_insensitive() -> None:
    assert id_parse("ACROBAT-academy-academy--academy-academy-academy") == 1


@pytest.mark.parametrize("bad,why", [
    ("academy-academy-academy", "needs 6 words, got 3"),
    ("academy-academy-academy--academy-academy-zzzz", "unknown word 'zzzz'"),
    # "yes" is a mnemonicode remainder word: never part of a 64-bit id
    ("yes-academy-academy--academy-academy-academy", "unknown word 'yes'"),
    ("academy-academy-amen--academy-academy-academy", "overflow"),
])
def test_bad_words_are_rejected(bad: str, why: str) -> None:
    with pytest.raises(JobIDError, match=why):
        id_parse(bad)


@pytest.mark.parametrize("value,emoji", EMOJI_VECTORS)
def test_emoji_vectors(value: int, emoji: str) -> None:
    assert JobID(value).emoji == emoji
    assert id_parse(emoji) == value


def test_bad_emoji_is_rejected() -> None:
    with pytest.raises(JobIDError, match="not a basemoji digit"):
        id_parse("😃🙂")  # U+1F642 is not in the table


@pytest.mark.parametrize("value,dothex", DOTHEX_VECTORS)
def test_dothex_and_kvs_vectors(value: int, dothex: str) -> None:
    jobid = JobID(value)
    assert jobid.dothex == dothex
    assert jobid.kvs == "job." + dothex
    assert id_parse(dothex) == value
    assert id_parse("job." + dothex) == value


def test_dothex_parser_accepts_unpadded_groups() -> None:
    assert id_parse("0.0.0.0039") == 57
    assert id_parse("a.b.c.d") == 2814797012533261
    assert id_parse("A.B.C.D") == 2814797012533261


@pytest.mark.parametrize("bad,why", [
    ("0.0.1", "needs 4 groups, got 3"),
    ("0.0.0.0.1", "needs 4 groups, got 5"),
    ("0.0.0.g", "bad dothex group 'g'"),
    (".0.0.1", "bad dothex group ''"),
    ("0.0.1.", "bad dothex group ''"),
    ("0.0.0.10000", "bad dothex group '10000'"),
])
def test_bad_dothex_is_rejected(bad: str, why: str) -> None:
    with pytest.raises(JobIDError, match=why):
        id_parse(bad)


def test_hex_encoding_is_lowercase_with_prefix() -> None:
    assert JobID(6731191091817518).hex == "0x17e9fb8df16c2e"
    assert id_parse("0x17e9fb8df16c2e") == 6731191091817518
    assert id_parse("0x17E9FB8DF16C2E") == 6731191091817518
    assert JobID(0).hex == "0x0"


def test_rfc19_examples_agree_across_encodings() -> None:
    # The RFC's own examples are the same two ids in different forms.
    first = {"ƒuZZybuNNy", "0x17e9fb8df16c2e", "0017.e9fb.8df1.6c2e",
             "reform-remote-galileo--heart-package-academy", "6731191091817518"}
    second = {"ƒZemgA8Bzf", "0xedaf97d000000", "000e.daf9.7d00.0000",
              "random-idea-yoyo--sugar-printer-academy"}
    assert {id_parse(s) for s in first} == {6731191091817518}
    assert {id_parse(s) for s in second} == {id_parse("ƒZemgA8Bzf")}


def test_decimal_form() -> None:
    assert id_parse("676292747853824") == 676292747853824
    assert id_parse(str(JOBID_MAX)) == JOBID_MAX
    assert JobID(42).dec == "42"
    assert JobID(42).encode() == "42"


def test_decode_order_and_whitespace() -> None:
    assert id_parse("  ƒ2\n") == 1
    assert id_parse("f.0.0.1") == 0x000F000000000001  # '.' wins over the f prefix
    assert id_parse("job.ƒ2") == 1  # the kvs prefix is stripped before decoding


@pytest.mark.parametrize("bad,why", [
    ("", "empty string"),
    ("   ", "empty string"),
    ("job.", "empty string"),
    ("x", "not a recognized jobid encoding"),
    ("12a", "not a recognized jobid encoding"),
    ("+5", "not a recognized jobid encoding"),
    ("１２", "not a recognized jobid encoding"),  # fullwidth digits are not ASCII
    ("0x", "bad hexadecimal digits"),
    ("0xfg", "bad hexadecimal digits"),
    ("18446744073709551616", "exceeds 64 bits"),
    ("0x10000000000000000", "exceeds 64 bits"),
])
def test_invalid_strings_raise_einval_naming_the_string(bad: str, why: str) -> None:
    with pytest.raises(JobIDError, match=why) as info:
        JobID(bad)
    assert info.value.errno == errno.EINVAL
    assert f"'{bad}'" in str(info.value)
    # callers of Flux's bindings catch either OSError or ValueError
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


def test_jobid_is_an_int() -> None:
    jobid = JobID("ƒuzzybunny")
    assert isinstance(jobid, int)
    assert jobid == 6787342413402046
    assert jobid + 1 == 6787342413402047
    assert {jobid: 1}[6787342413402046] == 1
    assert str(jobid) == "ƒuzzybunny"
    assert repr(jobid) == "JobID(6787342413402046)"
    assert jobid.orig == "ƒuzzybunny"
    assert JobID(5).orig == "5"
    assert JobID(JobID(5)) == 5


def test_jobid_rejects_out_of_range_ints_and_other_types() -> None:
    with pytest.raises(JobIDError, match="out of range"):
        JobID(-1)
    with pytest.raises(JobIDError, match="out of range"):
        JobID(2**64)
    with pytest.raises(TypeError, match="float"):
        JobID(1.5)  # type: ignore[arg-type]


def test_encode_every_named_encoding_round_trips() -> None:
    jobid = JobID(6787342413402046)
    for encoding in ENCODINGS:
        assert id_parse(jobid.encode(encoding)) == jobid
    assert jobid.encode("F58") == jobid.f58  # names are case-insensitive, as in Flux


def test_unknown_encoding_raises_eproto() -> None:
    with pytest.raises(JobIDError, match="unknown jobid encoding 'base64'") as info:
        JobID(1).encode("base64")
    assert info.value.errno == errno.EPROTO


def test_id_encode_rejects_out_of_range() -> None:
    with pytest.raises(JobIDError, match="out of range"):
        id_encode(-5, "dec")


def test_id_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="bytes"):
        id_parse(b"123")  # type: ignore[arg-type]


def test_pickle_keeps_value_and_orig() -> None:
    jobid = JobID("ƒ2")
    copy = pickle.loads(pickle.dumps(jobid))
    assert copy == 1 and isinstance(copy, JobID) and copy.orig == "ƒ2"


@given(st.integers(min_value=0, max_value=JOBID_MAX), st.sampled_from(ENCODINGS))
def test_every_encoding_round_trips(value: int, encoding: str) -> None:
    text = id_encode(value, encoding)
    assert id_parse(text) == value
    assert JobID(text) == value


@given(st.integers(min_value=0, max_value=JOBID_MAX))
def test_f58_is_order_preserving_for_equal_lengths(value: int) -> None:
    # base58 digits are in ascending ASCII order, so same-length F58 strings
    # sort like their ids
    other = min(value + 1, JOBID_MAX)
    a, b = JobID(value).f58plain, JobID(other).f58plain
    if len(a) == len(b):
        assert (a <= b) == (value <= other)
