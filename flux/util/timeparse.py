"""``parse_datetime``: the times ``flux jobs --since``, ``--begin-time`` and friends take.

``now``; ``+FSD`` / ``-FSD`` (an RFC 23 duration after or before now); or an
absolute or natural-language date read by the ``parsedatetime`` package, as
Flux does, with days starting at midnight (``tomorrow`` is 00:00 tomorrow).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flux.util.fsd import parse_fsd

__all__ = ["parse_datetime"]


def _local(now: datetime) -> bool:
    """True when ``now`` is in the local time zone (or naive, meaning local)."""
    return now.tzinfo is None or now.utcoffset() == now.astimezone().utcoffset()


def parse_datetime(string: str, now: datetime | None = None) -> datetime:
    """The time ``string`` names, relative to ``now`` (default: the current time).

    Returns an aware datetime.  ValueError names a string that is not a
    time: ``Invalid datetime: "junk"``.
    """
    if not isinstance(string, str):
        raise ValueError(f"Invalid datetime: {string!r} is not a string")
    if now is None:
        now = datetime.now().astimezone()
    elif now.tzinfo is None:
        now = now.astimezone()
    if string == "now":
        return now
    if string[:1] in ("+", "-"):
        try:
            seconds = parse_fsd(string[1:])
            delta = timedelta(seconds=seconds)
            return now + delta if string[0] == "+" else now - delta
        except (ValueError, OverflowError) as exc:
            raise ValueError(f'Invalid datetime: "{string}": {exc}') from None

    from parsedatetime import VERSION_CONTEXT_STYLE, Calendar

    calendar = Calendar(version=VERSION_CONTEXT_STYLE)
    calendar.ptc.StartHour = 0
    parsed, context = calendar.parse(string, sourceTime=now.timetuple())
    if not context.hasDateOrTime:
        raise ValueError(f'Invalid datetime: "{string}"')
    naive = datetime(*parsed[:6])
    if _local(now):
        return naive.astimezone()
    return naive.replace(tzinfo=now.tzinfo)
