"""Shared by flux dump, flux restore and flux fsck: where the store is, progress lines.

A store is named by ``--statedir=DIR`` (works with no instance running)
or, inside an instance, found through its ``content.backing-path``
attribute (see kvs/offline.py for what is safe while a broker runs).
"""
from __future__ import annotations

import errno
import sys
import time
from typing import Any

import click

from flux.errors import FluxError

STATEDIR_HELP = ("Use the content store of the instance state directory DIR directly "
                 "(no instance needed)")


def instance_handle(prog: str, why: str) -> Any:
    """A handle on the enclosing instance, or a clear error saying what else to do."""
    import flux

    try:
        return flux.Flux()
    except OSError as exc:
        raise FluxError(exc.errno or errno.ENOENT,
                        f"cannot connect to an instance ({exc.strerror or exc}); "
                        f"{why}") from None


def locate_store(prog: str, statedir: str | None) -> tuple[str, Any]:
    """(store path, handle or None): from --statedir, else the instance's backing path."""
    from kvs.offline import store_path

    if statedir is not None:
        return store_path(statedir), None
    h = instance_handle(prog, "name a stopped instance's store with --statedir=DIR")
    try:
        return h.attr_get("content.backing-path"), h
    except OSError as exc:
        raise FluxError(exc.errno or errno.ENOENT,
                        f"the instance has no content store ({exc.strerror or exc})") from None


class Progress:
    """``flux-PROG: VERB N keys`` on stderr: every key with -v, a live count on a
    terminal, the total at the end; no count with -q."""

    def __init__(self, prog: str, verb: str, verbose: bool, quiet: bool) -> None:
        self.prog, self.verb = prog, verb
        self.verbose, self.quiet = verbose, quiet
        self.count = 0
        self._tty = not quiet and not verbose and sys.stderr.isatty()
        self._last = 0.0

    def key(self, key: str) -> None:
        self.count += 1
        if self.verbose:
            click.echo(key, err=True)
        elif self._tty:
            now = time.monotonic()
            if now - self._last > 0.25:
                self._last = now
                click.echo(f"\rflux-{self.prog}: {self.verb} {self.count} keys", err=True,
                           nl=False)

    def warn(self, text: str) -> None:
        """A skipped key or other warning: shown even with -q (which only drops the count)."""
        if self._tty and self._last:
            click.echo("", err=True)
            self._last = 0.0
        click.echo(f"flux-{self.prog}: {text}", err=True)

    def done(self, extra: str = "") -> None:
        if self.quiet:
            return
        prefix = "\r" if self._tty and self._last else ""
        click.echo(f"{prefix}flux-{self.prog}: {self.verb} {self.count} keys{extra}", err=True)
