"""flux uri: resolve a target to a Flux URI (flux-uri(1)).

TARGET is a URI whose scheme names the resolver plugin (``jobid:``,
``pid:``, ``slurm:``, ``lsf:``; no scheme means ``jobid``, so a job id or a
job id path ``ƒA/ƒB`` works as it is); ``local://`` and ``ssh://`` URIs
pass through.  ``--local`` / ``--remote`` (or ``?local`` / ``?remote`` on
the target) give that form; ``--wait`` waits for the job to start and
record its URI.  The schemes are listed at the end of ``--help``.
"""
from __future__ import annotations

import click


class _UriCommand(click.Command):
    """The help ends with the resolver schemes, as flux-uri(1) says."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from flux.uri import FluxURIResolver

        try:
            plugins = FluxURIResolver().plugins()
        except ImportError as exc:
            plugins = {"?": f"(resolver plugins failed to load: {exc})"}
        formatter.write_paragraph()
        formatter.write_text("Supported resolver schemes:")
        with formatter.indentation():
            formatter.write_dl(sorted(plugins.items()))


@click.command("uri", cls=_UriCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--remote", is_flag=True, help="convert a local URI to remote")
@click.option("--local", "local_", is_flag=True, default=None,
              help="convert a remote URI to local (default when FLUX_URI_RESOLVE_LOCAL is set)")
@click.option("--wait", is_flag=True, help="wait for a URI to become available, if supported")
@click.argument("target", metavar="TARGET")
def command(remote: bool, local_: bool | None, wait: bool, target: str) -> None:
    """Resolve TARGET to a Flux URI.

    TARGET is a Flux job id (or job id path) or a URI in scheme:argument
    form (e.g. jobid:f1234).
    """
    import os
    import sys

    from cli.common import die
    from flux.uri import FluxURIResolver

    if local_ is None:
        local_ = bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL"))
    if wait:
        target += "&wait" if "?" in target else "?wait"
    try:
        uri = FluxURIResolver().resolve(target)
        if remote:
            text = uri.remote
        elif local_:
            text = uri.local
        else:
            text = str(uri)
    except NotImplementedError as exc:
        die("uri", str(exc))
    except (ValueError, ImportError) as exc:
        die("uri", str(exc))
    except OSError as exc:
        die("uri", exc.strerror or str(exc))
    sys.stdout.write(text + "\n")
