"""When cron entries run (flux-cron(1)): pure functions of times and counts.

``interval``: every N seconds, the first after ``after`` (default N).
``event``: after every ``nth`` matching event, the first after ``after``
events, never closer than ``min_interval`` seconds.
``datetime``: a crontab line's five fields (minute 0-59, hour 0-23, day of
month 1-31, month 0-11, day of week 0-6, Sunday 0), or one time (``at``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CronFields", "EventCounter", "parse_crontab_line", "parse_field", "next_match",
           "interval_next", "parse_options", "EXTRA_OPTIONS"]

#: (name, low, high) of each crontab field, in line order
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("mday", 1, 31), ("month", 0, 11),
           ("wday", 0, 6))
#: -o options and their types (flux-cron(1) EXTRA OPTIONS)
EXTRA_OPTIONS = {"timeout": float, "rank": int, "task-history-count": int,
                 "stop-on-failure": int}


def parse_field(text: str, low: int, high: int, name: str = "field") -> frozenset[int]:
    """One crontab field: ``*``, ``N``, ``A-B``, any of them ``/STEP``, comma lists."""
    out: set[int] = set()
    for part in text.split(","):
        rng, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name}: invalid step in {part!r}")
            step = int(step_text)
        if rng == "*":
            a, b = low, high
        else:
            lo, dash, hi = rng.partition("-")
            if not lo.isdigit() or (dash and not hi.isdigit()):
                raise ValueError(f"{name}: {part!r} is not a number, range or *")
            a = int(lo)
            b = int(hi) if dash else (high if slash else a)
            if not (low <= a <= high and low <= b <= high) or a > b:
                raise ValueError(f"{name}: {part!r} is outside {low}-{high}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class CronFields:
    minute: frozenset[int]
    hour: frozenset[int]
    mday: frozenset[int]
    month: frozenset[int]            # 0-11
    wday: frozenset[int]             # 0-6, Sunday 0
    mday_any: bool = True            # the field was ``*``
    wday_any: bool = True

    def matches(self, t: datetime) -> bool:
        return t.minute in self.minute and t.hour in self.hour and self.day_matches(t)

    def day_matches(self, t: datetime) -> bool:
        """T's date (month and day fields) matches, whatever its time."""
        if t.month - 1 not in self.month:
            return False
        mday_ok = t.day in self.mday
        wday_ok = (t.isoweekday() % 7) in self.wday
        # cron's rule: with both day fields restricted, either one may match
        if not self.mday_any and not self.wday_any:
            return mday_ok or wday_ok
        return mday_ok and wday_ok


def parse_crontab_line(line: str) -> tuple[CronFields, str]:
    """``m h dom mon dow command...`` -> (fields, command); ValueError naming the field."""
    words = line.split(None, 5)
    if len(words) < 6:
        raise ValueError(f"crontab line needs 5 time fields and a command: {line.strip()!r}")
    sets = [parse_field(w, lo, hi, name) for w, (name, lo, hi) in zip(words, _FIELDS)]
    return CronFields(*sets, mday_any=words[2] == "*", wday_any=words[4] == "*"), \
        words[5].strip()


def next_match(fields: CronFields, after: float) -> float | None:
    """The first whole minute later than AFTER (local time) the fields match; None if
    none in the next 5 years (``31 1`` for February)."""
    t = datetime.fromtimestamp(after).replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = t + timedelta(days=366 * 5)
    while t < limit:
        if t.month - 1 not in fields.month:
            # skip to the first day of the next month
            t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            continue
        if not fields.day_matches(t):
            t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            continue
        if t.hour not in fields.hour:
            t = (t + timedelta(hours=1)).replace(minute=0)
            continue
        if t.minute not in fields.minute:
            t += timedelta(minutes=1)
            continue
        return t.timestamp()
    return None


def interval_next(seconds: float, after: float | None, started: float,
                  fired: float | None) -> float:
    """When an interval entry fires next: ``after`` (or the interval) past its start,
    then the interval past its last firing."""
    if fired is None or fired < started:
        return started + (seconds if after is None else after)
    return fired + seconds


@dataclass(slots=True)
class EventCounter:
    """Which matching events run an event entry's command."""

    nth: int = 1
    after: int = 0
    min_interval: float = 0.0
    seen: int = 0
    last: float | None = None

    def event(self, now: float | None = None) -> bool:
        """One more matching event: True if the command runs now."""
        now = time.time() if now is None else now
        self.seen += 1
        # the first run is at event AFTER (or NTH), then at every NTH after it
        first = self.after if self.after > 0 else self.nth
        if self.seen < first or (self.seen - first) % self.nth != 0:
            return False
        if self.min_interval and self.last is not None and now - self.last < self.min_interval:
            return False
        self.last = now
        return True

    def reset(self) -> None:
        self.seen = 0
        self.last = None


def parse_options(text: str | None) -> dict[str, float | int]:
    """``-o timeout=5,rank=1`` -> {"timeout": 5.0, "rank": 1}; ValueError naming the option."""
    out: dict[str, float | int] = {}
    if not text:
        return out
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        kind = EXTRA_OPTIONS.get(key)
        if kind is None:
            raise ValueError(f"unknown option {key!r} (known: {', '.join(EXTRA_OPTIONS)})")
        if not eq:
            raise ValueError(f"option {key} needs a value ({key}=VALUE)")
        try:
            val = kind(value.strip())
        except ValueError:
            raise ValueError(f"option {key}: invalid value {value.strip()!r}") from None
        if val < 0:
            raise ValueError(f"option {key}: must not be negative")
        out[key] = val
    return out
