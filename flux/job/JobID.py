"""RFC 19 job ids: parse any FLUID string form and encode to each of them.

A job id is an unsigned 64-bit integer.  Its string forms are decimal,
``0x`` hex, dotted hex (``0000.0000.0000.0001``), the KVS directory form
(``job.`` + dotted hex), F58 (base58 with a ``ƒ`` or ``f`` prefix),
mnemonicode words, and basemoji emoji.  ``id_parse`` tells them apart by
the RFC 19 decode order; ``id_encode`` and the ``JobID`` properties produce
them.  Bad input raises ``JobIDError``, which is both an ``OSError`` (errno
EINVAL, as Flux's bindings raise) and a ``ValueError``.
"""
from __future__ import annotations

import errno
import os
from typing import Callable

from flux.errors import FluxError

__all__ = ["JobID", "JobIDError", "id_parse", "id_encode", "JOBID_MAX", "ENCODINGS"]

JOBID_MAX = (1 << 64) - 1

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_VALUE = {c: i for i, c in enumerate(_B58_ALPHABET)}
_F58_PREFIX = "\u0192"  # ƒ
_F58_ASCII_PREFIX = "f"
_MN_BASE = 1626
_EMOJI_BASE = 576


class JobIDError(FluxError, ValueError):
    """A job id string, value or encoding name that is not valid."""


def _invalid(text: object, why: str) -> JobIDError:
    return JobIDError(errno.EINVAL, f"invalid jobid '{text}': {why}")


# --- tables, loaded on first use so importing this module stays cheap -------

_tables: dict[str, object] = {}


def _words() -> tuple[tuple[str, ...], dict[str, int]]:
    if "words" not in _tables:
        from flux.job._words import MN_BASE, WORDS

        base = WORDS[:MN_BASE]
        _tables["words"] = (base, {w: i for i, w in enumerate(base)})
    return _tables["words"]  # type: ignore[return-value]


def _emoji() -> tuple[str, dict[str, int]]:
    if "emoji" not in _tables:
        from flux.job._emoji import EMOJI

        _tables["emoji"] = (EMOJI, {e: i for i, e in enumerate(EMOJI)})
    return _tables["emoji"]  # type: ignore[return-value]


# --- decoding ----------------------------------------------------------------

def _decode_dothex(s: str, orig: str) -> int:
    parts = s.split(".")
    if len(parts) != 4:
        raise _invalid(orig, f"dothex needs 4 groups, got {len(parts)}")
    value = 0
    for part in parts:
        if not part or len(part) > 4 or not _is_hex(part):
            raise _invalid(orig, f"bad dothex group '{part}'")
        value = (value << 16) | int(part, 16)
    return value


def _is_hex(s: str) -> bool:
    return s.isascii() and all(c in "0123456789abcdefABCDEF" for c in s)


def _decode_words(s: str, orig: str) -> int:
    words = [w for w in s.lower().split("-") if w]
    if len(words) != 6:
        raise _invalid(orig, f"words form needs 6 words, got {len(words)}")
    _, index = _words()
    value = 0
    for group in (1, 0):  # the first three words are the low 32 bits
        x = 0
        for word in reversed(words[group * 3:group * 3 + 3]):
            digit = index.get(word)
            if digit is None:
                raise _invalid(orig, f"unknown word '{word}'")
            x = x * _MN_BASE + digit
        if x >= 1 << 32:
            raise _invalid(orig, "words overflow 64 bits")
        value = (value << 32) | x
    return value


def _decode_f58(s: str, orig: str) -> int:
    digits = s[1:]
    if not digits:
        raise _invalid(orig, "F58 form has no digits")
    value = 0
    for c in digits:
        v = _B58_VALUE.get(c)
        if v is None:
            raise _invalid(orig, f"'{c}' is not a base58 digit")
        value = value * 58 + v
    if value > JOBID_MAX:
        raise _invalid(orig, "F58 value exceeds 64 bits")
    return value


def _decode_emoji(s: str, orig: str) -> int:
    _, index = _emoji()
    value = 0
    for c in s:
        v = index.get(c)
        if v is None:
            raise _invalid(orig, f"'{c}' is not a basemoji digit")
        value = value * _EMOJI_BASE + v
    if value > JOBID_MAX:
        raise _invalid(orig, "emoji value exceeds 64 bits")
    return value


def _decode_integer(s: str, orig: str) -> int:
    if s.startswith("0x"):
        digits = s[2:]
        if not digits or not _is_hex(digits):
            raise _invalid(orig, "bad hexadecimal digits")
        value = int(digits, 16)
    else:
        if not (s.isascii() and s.isdigit()):
            raise _invalid(orig, "not a recognized jobid encoding")
        value = int(s)
    if value > JOBID_MAX:
        raise _invalid(orig, "value exceeds 64 bits")
    return value


def id_parse(jobid_str: str) -> int:
    """Return the integer job id in ``jobid_str``, in any RFC 19 encoding.

    Leading and trailing whitespace and a ``job.`` prefix are ignored.
    Raises JobIDError (OSError EINVAL and ValueError) naming the string.
    """
    if not isinstance(jobid_str, str):
        raise TypeError(f"jobid must be a str or int, not {type(jobid_str).__name__}")
    s = jobid_str.strip()
    if s.startswith("job."):
        s = s[4:]
    if not s:
        raise _invalid(jobid_str, "empty string")
    # RFC 19 decode order: '.' dothex, '-' words, ƒ/f F58, F0 9F emoji, 0x, decimal
    if "." in s:
        return _decode_dothex(s, jobid_str)
    if "-" in s:
        return _decode_words(s, jobid_str)
    first = s[0]
    if first == _F58_PREFIX or first == _F58_ASCII_PREFIX:
        return _decode_f58(s, jobid_str)
    if 0x1F000 <= ord(first) <= 0x1FFFF:  # UTF-8 bytes F0 9F ...
        return _decode_emoji(s, jobid_str)
    return _decode_integer(s, jobid_str)


# --- encoding ----------------------------------------------------------------

def _f58_prefix() -> str:
    # Decided per call so a test (or a user) can flip the locale or the
    # environment variable at run time, as Flux does.
    if "FLUX_F58_FORCE_ASCII" in os.environ:
        return _F58_ASCII_PREFIX
    import _locale  # (locale itself imports re: a short command's start-up)

    try:
        codeset = _locale.nl_langinfo(_locale.CODESET)
    except (AttributeError, ValueError):
        return _F58_ASCII_PREFIX
    return _F58_PREFIX if codeset.replace("-", "").upper() == "UTF8" else _F58_ASCII_PREFIX


def _base58(n: int) -> str:
    if n == 0:
        return _B58_ALPHABET[0]
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    return "".join(reversed(out))


def _enc_dec(n: int) -> str:
    return str(n)


def _enc_hex(n: int) -> str:
    return f"{n:#x}"


def _enc_dothex(n: int) -> str:
    h = f"{n:016x}"
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}.{h[12:16]}"


def _enc_kvs(n: int) -> str:
    return "job." + _enc_dothex(n)


def _enc_f58(n: int) -> str:
    return _f58_prefix() + _base58(n)


def _enc_f58plain(n: int) -> str:
    return _F58_ASCII_PREFIX + _base58(n)


def _enc_words(n: int) -> str:
    words, _ = _words()
    out = []
    for x in (n & 0xFFFFFFFF, n >> 32):
        out.append("-".join((words[x % _MN_BASE],
                             words[(x // _MN_BASE) % _MN_BASE],
                             words[x // (_MN_BASE * _MN_BASE)])))
    return "--".join(out)


def _enc_emoji(n: int) -> str:
    table, _ = _emoji()
    if n == 0:
        return table[0]
    out = []
    while n:
        n, r = divmod(n, _EMOJI_BASE)
        out.append(table[r])
    return "".join(reversed(out))


_ENCODERS: dict[str, Callable[[int], str]] = {
    "dec": _enc_dec,
    "hex": _enc_hex,
    "dothex": _enc_dothex,
    "kvs": _enc_kvs,
    "f58": _enc_f58,
    "f58plain": _enc_f58plain,
    "words": _enc_words,
    "emoji": _enc_emoji,
}
ENCODINGS = tuple(_ENCODERS)


def id_encode(jobid: int, encoding: str = "f58") -> str:
    """Return ``jobid`` as a string in ``encoding`` (one of ENCODINGS).

    An unknown encoding raises JobIDError with errno EPROTO, as Flux does;
    an id outside 0..2**64-1 raises JobIDError with errno EINVAL.
    """
    encoder = _ENCODERS.get(encoding.lower()) if isinstance(encoding, str) else None
    if encoder is None:
        raise JobIDError(errno.EPROTO, f"unknown jobid encoding '{encoding}'")
    n = int(jobid)
    if not 0 <= n <= JOBID_MAX:
        raise _invalid(jobid, "out of range 0..2**64-1")
    return encoder(n)


class JobID(int):
    """A Flux job id: an ``int`` that also parses and prints RFC 19 forms.

    ``JobID("ƒuzzybunny") == 6787342413402046``; ``str(jobid)`` is the F58
    form and ``jobid.orig`` the string it was made from.
    """

    orig_str: str

    def __new__(cls, value: int | str) -> JobID:
        if isinstance(value, int) and not isinstance(value, bool):
            jobid = int(value)
            if not 0 <= jobid <= JOBID_MAX:
                raise _invalid(value, "out of range 0..2**64-1")
        else:
            jobid = id_parse(value)  # type: ignore[arg-type]
        self = super().__new__(cls, jobid)
        # a copy keeps the string the source was made from (as Flux's does)
        self.orig_str = value.orig_str if isinstance(value, JobID) else str(value)
        return self

    def encode(self, encoding: str = "dec") -> str:
        """Return this id in ``encoding`` (see ENCODINGS)."""
        return id_encode(self, encoding)

    @property
    def dec(self) -> str:
        """Decimal form."""
        return str(int(self))

    @property
    def hex(self) -> str:
        """``0x``-prefixed lowercase hexadecimal form."""
        return _enc_hex(int(self))

    @property
    def dothex(self) -> str:
        """Dotted hex form, ``xxxx.xxxx.xxxx.xxxx``."""
        return _enc_dothex(int(self))

    @property
    def kvs(self) -> str:
        """KVS directory of the job, ``job.`` + dotted hex."""
        return _enc_kvs(int(self))

    @property
    def f58(self) -> str:
        """F58 form, prefixed ``ƒ`` (or ``f`` without a UTF-8 locale)."""
        return _enc_f58(int(self))

    @property
    def f58plain(self) -> str:
        """F58 form with the ASCII ``f`` prefix."""
        return _enc_f58plain(int(self))

    @property
    def words(self) -> str:
        """Mnemonicode words form."""
        return _enc_words(int(self))

    @property
    def emoji(self) -> str:
        """Basemoji form."""
        return _enc_emoji(int(self))

    @property
    def orig(self) -> str:
        """The string this JobID was created from."""
        return self.orig_str

    def __str__(self) -> str:
        return self.f58

    def __repr__(self) -> str:
        return f"JobID({int(self)})"
