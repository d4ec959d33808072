"""The pure part of ``flux top``: data in, screen cells out.

Nothing here talks to Flux or to a terminal.  ``Summary`` and ``JobRow``
hold what the two panes show; ``summary_canvas`` and ``table_canvas``
lay them out on a ``Canvas`` (rows of cells, each a character and a
style name); ``Selection`` is the cursor in the job table.  The terminal
side (``cli.top.app``) turns style names into the terminal's sequences.

Layout (as flux-top(1) lays out its 80-column summary pane)::

    row 0   ƒ            <title: job id path, centred>        <time left>⌚
    row 1       nodes [||||            1/4]   3 free        2 pending
    row 2       cores [||||||          3/8]   5 free        3 running
    row 3        gpus [                0/0]   0 free        7 complete    ♡
    row 4       queue: batch                                1 failed
    row 5    size: 4   depth: 1            uptime: 2.1m            0.1.0
    row 6         JOBID     USER ST NTASKS NNODES RUNTIME NAME
    row 7..      jobs, newest first; instances blue and bold, the cursor reversed

Styles: ``yellow``, ``red``, ``blue``, ``green``, ``bold``, ``dim``,
``reverse`` (a cell's style is a frozenset of these).
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "SUMMARY_HEIGHT",
    "SUMMARY_WIDTH",
    "HEART",
    "HEART_AT",
    "Canvas",
    "JobRow",
    "ResourceCount",
    "Selection",
    "Summary",
    "cell_width",
    "fsd2",
    "header_text",
    "job_row",
    "row_text",
    "summary_canvas",
    "table_canvas",
]

#: rows taken by the summary pane; the job table starts below it
SUMMARY_HEIGHT = 6
#: the summary pane is laid out on 80 columns, as flux-top's is
SUMMARY_WIDTH = 80

Style = frozenset
PLAIN: frozenset[str] = frozenset()


def fsd2(seconds: float) -> str:
    """A duration with two significant digits in its largest fitting unit, as
    flux-top shows run times and time left: ``45ms``, ``4.5s``, ``12m``, ``3.2h``,
    ``1.5d``; ``infinity`` for an infinite one."""
    if math.isinf(seconds):
        return "infinity"
    if seconds < 0 or math.isnan(seconds):
        seconds = 0.0
    if 0 < seconds < 0.1:
        return f"{seconds * 1000:.2g}ms"
    for unit, scale in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= scale:
            return f"{seconds / scale:.2g}{unit}"
    return f"{seconds:.2g}s"


def cell_width(char: str) -> int:
    """Columns a character takes on a terminal: 2 for wide (East Asian W/F) ones."""
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


class Canvas:
    """HEIGHT rows of WIDTH cells; each cell a (char, style).  Text placed past
    the right edge is cut.  A wide character takes its cell and the next,
    which holds ``""``."""

    def __init__(self, width: int, height: int) -> None:
        self.width = max(0, width)
        self.height = max(0, height)
        self.cells: list[list[tuple[str, frozenset[str]]]] = [
            [(" ", PLAIN)] * self.width for _ in range(self.height)]

    def put(self, row: int, col: int, text: str, style: frozenset[str] | str = PLAIN) -> int:
        """Write TEXT at (ROW, COL) in STYLE; returns the column after it."""
        if isinstance(style, str):
            style = frozenset(style.split())
        if not 0 <= row < self.height:
            return col
        cells = self.cells[row]
        for char in text:
            w = cell_width(char)
            if col < 0:
                col += w
                continue
            if col + w > self.width:
                break
            cells[col] = (char, style)
            if w == 2:
                cells[col + 1] = ("", style)
            col += w
        return col

    def fill_style(self, row: int, style: frozenset[str] | str) -> None:
        """Add STYLE to every cell of ROW (a highlighted line)."""
        if isinstance(style, str):
            style = frozenset(style.split())
        if 0 <= row < self.height:
            self.cells[row] = [(c, s | style) for c, s in self.cells[row]]

    def text(self, row: int) -> str:
        """ROW as plain text, trailing blanks removed."""
        return "".join(c for c, _ in self.cells[row]).rstrip()

    def lines(self) -> list[str]:
        return [self.text(r) for r in range(self.height)]

    def style_at(self, row: int, col: int) -> frozenset[str]:
        return self.cells[row][col][1]

    def find(self, row: int, text: str) -> int:
        """The column where TEXT starts in ROW (counting cells), or -1."""
        chars = [c for c, _ in self.cells[row]]
        plain = "".join(c or "\0" for c in chars)
        return plain.find(text)

    def segments(self, row: int) -> list[tuple[str, frozenset[str]]]:
        """ROW as runs of one style: [(text, style), ...]."""
        out: list[tuple[str, frozenset[str]]] = []
        for char, style in self.cells[row]:
            if out and out[-1][1] == style:
                out[-1] = (out[-1][0] + char, style)
            else:
                out.append((char, style))
        return out

    def blit(self, other: Canvas, top: int) -> None:
        """Copy OTHER's rows onto this canvas from row TOP."""
        for r in range(other.height):
            if 0 <= top + r < self.height:
                n = min(self.width, other.width)
                self.cells[top + r][:n] = other.cells[r][:n]


# -- the summary pane ------------------------------------------------------------------------


@dataclass(slots=True)
class ResourceCount:
    """Nodes, cores or GPUs of an instance: all of them, allocated (used), down."""

    total: int = 0
    used: int = 0
    down: int = 0

    @property
    def free(self) -> int:
        """Up and not allocated."""
        return max(0, self.total - self.used - self.down)


@dataclass(slots=True)
class Summary:
    """What the summary pane shows about one instance.

    ``title``: the path of job ids from where ``flux top`` started (empty for
    an instance that is not a job).  ``expiration``: when the instance's
    resources expire (0: never).  ``starttime``: when its broker started.
    ``stats``: counts from job-list.job-stats (pending, running, inactive,
    successful, failed; failed includes canceled and timed out jobs).
    ``queue``: the queue shown, if only one is (empty: all of them).
    """

    title: str = ""
    expiration: float = 0.0
    starttime: float = 0.0
    size: int = 1
    level: int = 0
    version: str = ""
    nodes: ResourceCount = field(default_factory=ResourceCount)
    cores: ResourceCount = field(default_factory=ResourceCount)
    gpus: ResourceCount = field(default_factory=ResourceCount)
    pending: int = 0
    running: int = 0
    inactive: int = 0
    successful: int = 0
    failed: int = 0
    f_char: str = "\u0192"
    queue: str = ""


def _bargraph(canvas: Canvas, row: int, col: int, width: int, name: str,
              res: ResourceCount, color: bool) -> None:
    """``name [||||      |used/total]``: used grows from the left (yellow), down
    from the right (red), as flux-top draws them."""
    used = min(res.used, res.total)
    prefix = f"{name:>5} ["
    suffix = f"{used}/{res.total}]"
    slots = max(0, width - len(prefix) - len(suffix) - 1)
    canvas.put(row, col, prefix + " " * slots + suffix)
    if res.total <= 0:
        return
    nused = min(slots, math.ceil(used / res.total * slots))
    ndown = min(slots, math.ceil(min(res.down, res.total) / res.total * slots))
    start = col + len(prefix)
    canvas.put(row, start, "|" * nused, "yellow" if color else PLAIN)
    if ndown:
        canvas.put(row, start + slots - ndown, "|" * ndown, "red" if color else PLAIN)


#: where the heart shows (row, column), as flux-top places it
HEART_AT = (3, 77)
HEART = "\u2661"


def summary_canvas(summary: Summary, now: float, details: bool = True,
                   color: bool = True, width: int = SUMMARY_WIDTH,
                   heart: bool = False) -> Canvas:
    """The summary pane of SUMMARY at time NOW.  DETAILS splits inactive jobs into
    complete and failed (the ``d`` key toggles it); HEART shows the heart that
    blinks with each heartbeat event."""
    c = Canvas(width, SUMMARY_HEIGHT)
    # row 0: the ƒ, the title, the time left
    c.put(0, 0, summary.f_char, "yellow" if color else PLAIN)
    title = summary.title
    if title:
        # centred on columns 6-78 as flux-top centres it, but clear of the time left
        room = 70 - 1 - 6
        if len(title) > room:
            title = "\u2026" + title[len(title) - room + 1:]
        col = min(6 + (73 - len(title)) // 2, 70 - 1 - len(title))
        c.put(0, col, title, "blue bold" if color else "bold")
    left = summary.expiration - now if summary.expiration > 0 else 0.0
    timeleft = f"{fsd2(left) if left > 0 else '':>8}" + ("\u231a" if left > 0 else "\u221e")
    c.put(0, 70, timeleft)
    # rows 1-3: resources; their free counts beside them
    for row, (name, res) in enumerate((("nodes", summary.nodes), ("cores", summary.cores),
                                       ("gpus", summary.gpus)), start=1):
        _bargraph(c, row, 4, 36, name, res, color)
        c.put(row, 40, f"{res.free:>5} free")
    # rows 1-4: jobs by state
    c.put(1, 60, f"{summary.pending:>5} pending")
    c.put(2, 60, f"{summary.running:>5} running")
    if details:
        c.put(3, 60, f"{summary.successful:>5}", "green bold" if color and summary.successful
              else PLAIN)
        c.put(3, 65, " complete")
        c.put(4, 60, f"{summary.failed:>5}", "red bold" if color and summary.failed else PLAIN)
        c.put(4, 65, " failed")
    else:
        c.put(3, 60, f"{summary.inactive:>5} inactive")
    if heart:
        c.put(*HEART_AT, HEART)
    # row 4: the queue shown, under the bargraphs
    if summary.queue:
        c.put(4, 4, f"queue: {summary.queue}"[:36], "bold")
    # row 5: size, depth, uptime, version
    c.put(5, 1, f"size: {summary.size}", "dim")
    if summary.level:
        c.put(5, 11, f"depth: {summary.level}", "dim")
    uptime = fsd2(abs(now - summary.starttime)) if summary.starttime else ""
    c.put(5, 31, f"uptime: {uptime}", "dim")
    if summary.version:
        c.put(5, 1 + 78 - len(summary.version), summary.version, "dim")
    return c


# -- the job table -------------------------------------------------------------------------


@dataclass(slots=True)
class JobRow:
    """One line of the job table.  ``uri``: the job's Flux instance, or None."""

    id: int
    jobid: str
    user: str
    state: str
    ntasks: int
    nnodes: int
    runtime: str
    name: str
    uri: str | None = None

    @property
    def is_instance(self) -> bool:
        return bool(self.uri)


def job_row(job: dict, now: float, jobid: str, user: str, state: str) -> JobRow:
    """A JobRow from a job-list record (``id``, ``ntasks``, ``nnodes``, ``t_run``,
    ``name``, ``annotations.user.uri``); JOBID, USER and STATE already encoded."""
    t_run = job.get("t_run") or 0.0
    uri = ((job.get("annotations") or {}).get("user") or {}).get("uri")
    return JobRow(id=int(job["id"]), jobid=jobid, user=user, state=state,
                  ntasks=int(job.get("ntasks") or 0), nnodes=int(job.get("nnodes") or 0),
                  runtime=fsd2(max(0.0, now - t_run)) if t_run else "",
                  name=str(job.get("name") or ""),
                  uri=uri if isinstance(uri, str) and uri else None)


_FIXED = 12 + 8 + 2 + 6 + 6 + 7 + 6  # the columns before NAME and the spaces between


def header_text(width: int) -> str:
    name_width = max(4, width - _FIXED)
    return (f"{'JOBID':>12} {'USER':>8} {'ST':>2} {'NTASKS':>6} {'NNODES':>6} "
            f"{'RUNTIME':>7} {'NAME':<{name_width}}")


def row_text(row: JobRow, width: int) -> str:
    name_width = max(4, width - _FIXED)
    return (f"{row.jobid:>12.12} {row.user:>8.8} {row.state:>2.2} {row.ntasks:>6} "
            f"{row.nnodes:>6} {row.runtime:>7.7} {row.name:<{name_width}.{name_width}}")


def table_canvas(rows: list[JobRow], selected: int | None, width: int, height: int,
                 color: bool = True) -> Canvas:
    """The job table: a reversed header, then one line per row (as many as fit).
    Instances are blue and bold; the row whose id is SELECTED is reversed."""
    c = Canvas(width, height)
    c.put(0, 0, header_text(width))
    c.fill_style(0, "reverse")
    for i, row in enumerate(rows[:max(0, height - 1)]):
        style: set[str] = set()
        if row.is_instance:
            style |= {"blue", "bold"} if color else {"bold"}
        if row.id == selected:
            style.add("reverse")
        c.put(1 + i, 0, row_text(row, width), frozenset(style))
    return c


# -- the cursor ------------------------------------------------------------------------------


class Selection:
    """The selected job, kept by id across refreshes, as flux-top keeps it.

    ``move(rows, +1)`` selects the next row (from the last, the first; with
    none selected, the first); ``move(rows, -1)`` the previous (from the
    first or none, the last).  A selected job that leaves the table is
    still remembered; moving then starts again from an end.
    """

    def __init__(self) -> None:
        self.current: int | None = None

    def move(self, rows: list[JobRow], step: int) -> int | None:
        if not rows:
            return self.current
        ids = [r.id for r in rows]
        index = ids.index(self.current) if self.current in ids else -1
        if step > 0:
            index = 0 if index == len(ids) - 1 else index + 1
        else:
            index = len(ids) - 1 if index <= 0 else index - 1
        self.current = ids[index]
        return self.current

    def row(self, rows: list[JobRow]) -> JobRow | None:
        """The selected row, if it is in ROWS."""
        for r in rows:
            if r.id == self.current:
                return r
        return None
