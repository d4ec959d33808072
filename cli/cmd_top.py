"""flux top: a live view of an instance and its running jobs (flux-top(1), seed 004).

``flux top [TARGET]`` shows the enclosing instance, or TARGET: a job id,
a job id path (``ƒA/ƒB``) or a URI of a job that is a Flux instance.  The
summary pane and the job table are ``cli.top.view``; the data comes from
``cli.top.source``; the keys and the screen are ``cli.top.app`` (blessed).
See specs/top.md.
"""
from __future__ import annotations

import click

from cli.common import die


@click.command("top", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--color", "color", metavar="WHEN", is_flag=False, flag_value="always",
              default="auto", type=click.Choice(["auto", "always", "never"]),
              help="Colorize output: WHEN is auto (default), always (default if "
                   "WHEN is omitted) or never")
@click.option("-q", "--queue", metavar="NAME", default=None,
              help="Limit status and jobs to queue NAME")
@click.argument("target", required=False)
def command(color: str, queue: str | None, target: str | None) -> None:
    """Show the instance's resources and running jobs, live.

    TARGET: a job id, a job id path (A/B) or a URI of a running Flux instance
    (default: the enclosing instance).  Keys: j/k or down/up move, Enter opens the
    selected instance, q goes back up (or quits), h/l or left/right rotate through
    the queues, d toggles complete/failed.
    """
    import os

    if not os.isatty(0):
        die("top", "stdin is not a terminal")
    if not os.isatty(1):
        die("top", "stdout is not a terminal")

    import blessed

    from cli.top.app import LostConnection, TopApp
    from cli.top.source import Instance, ResolveError, resolve

    try:
        uri, title = resolve(target)
    except ResolveError as exc:
        die("top", str(exc))
    try:
        first = Instance.open(uri, title)
    except OSError as exc:
        die("top", f"error connecting to Flux: {exc.strerror or exc}")
    try:
        first.set_queue(queue)
    except ValueError as exc:
        first.close()
        die("top", str(exc))
    # NO_COLOR means no colours, not no screen: blessed would drop every sequence
    no_color = os.environ.pop("NO_COLOR", None)
    try:
        term = blessed.Terminal()
    finally:
        if no_color is not None:
            os.environ["NO_COLOR"] = no_color
    if not term.does_styling or not term.move_yx(1, 1):
        die("top", "terminal does not support required capabilities")
    use_color = color == "always" or (color == "auto" and not no_color
                                      and term.number_of_colors >= 8)
    app = TopApp(term, first, color=use_color)
    try:
        app.run()
    except LostConnection as exc:
        die("top", str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        for level in app.stack:
            level.instance.close()
