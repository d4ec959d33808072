"""flux dump: write a KVS snapshot to a tar archive (flux-dump(1)).

The snapshot is the primary namespace at its current root (asked of the
running kvs), or with ``--checkpoint`` the root last written to the
content store, read from the store itself: inside an instance through
``content.backing-path``, or with no instance at all from
``--statedir=DIR`` (our addition).  ``--no-cache`` reads the blobs of a
live dump from the store file instead of asking the broker for each.
OUTFILE is ``-`` (uncompressed tar on stdout) or a path whose extension
picks the compression (.tar, .tgz/.tar.gz, .tar.bz2, .tar.xz).  The
archive format is in specs/dump-restore.md.  Exit 1 on any failure (the
partial output file is removed), 2 on bad usage.
"""
from __future__ import annotations

import errno
import os
import time
from typing import Any

import click

from cli.common import handle_errors
from cli.content_store import STATEDIR_HELP, Progress, instance_handle, locate_store

_CTX = {"help_option_names": ["-h", "--help"]}
_INFLIGHT = 256


def _rpc_loader(h: Any, inflight: int = _INFLIGHT) -> Any:
    """load_many over content.load requests, up to INFLIGHT in flight at once."""
    from flux.errors import FluxError

    def load_many(refs: list[str]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(refs), inflight):
            futs = [(ref, h.rpc("content.load", ref)) for ref in refs[i:i + inflight]]
            for ref, fut in futs:
                try:
                    out.append(fut.get_raw() or b"")
                except OSError as exc:
                    code = exc.errno or errno.EIO
                    text = f"{ref}: no such blob" if code == errno.ENOENT \
                        else (exc.strerror or str(exc))
                    out.append(FluxError(code, text))
        return out

    return load_many


@click.command("dump", context_settings=_CTX)
@click.option("-v", "--verbose", is_flag=True, help="List keys on stderr as they are dumped")
@click.option("-q", "--quiet", is_flag=True, help="Don't show the count of dumped keys")
@click.option("--checkpoint", is_flag=True,
              help="Dump the latest checkpoint in the content store, not the current root")
@click.option("--no-cache", is_flag=True, help="Read blobs from the content store directly")
@click.option("--ignore-failed-read", is_flag=True,
              help="Report keys whose blobs cannot be read and go on without them")
@click.option("--statedir", metavar="DIR", help=STATEDIR_HELP)
@click.option("--maxreqs", type=click.IntRange(1, 65536), default=_INFLIGHT, hidden=True,
              help="Content loads in flight at once (flux-core's rc3 passes 128)")
@click.option("--sd-notify", is_flag=True, hidden=True, help="Accepted (no systemd here)")
@click.argument("outfile")
@handle_errors("dump")
def command(verbose: bool, quiet: bool, checkpoint: bool, no_cache: bool,
            ignore_failed_read: bool, statedir: str | None, maxreqs: int, sd_notify: bool,
            outfile: str) -> None:
    """Write a KVS snapshot to OUTFILE (a tar archive, or - for standard output)."""
    from kvs import archive
    from kvs.offline import open_store

    started = time.time()
    progress = Progress("dump", "archived", verbose, quiet)
    on_error = None
    if ignore_failed_read:
        def on_error(key: str, exc: OSError) -> None:
            progress.warn(f"{key}: {exc.strerror or exc}; skipped")

    store = None
    load_many = None
    pin = None
    if checkpoint or statedir is not None:  # a store named by --statedir has only its checkpoint
        path, _h = locate_store("dump", statedir)
        store = open_store(path)
        rec = store.root("primary")
        if rec is None:
            store.close()
            raise OSError(errno.ENOENT, f"{path}: no checkpoint of the primary namespace")
        rootref, mtime = rec.rootref, rec.timestamp
    else:
        h = instance_handle("dump", "dump a stopped instance with --checkpoint --statedir=DIR")
        rootref = h.rpc("kvs.getroot", {"namespace": "primary"}).get()["rootref"]
        mtime = started
        # online GC keeps a replaced root only briefly: hold this one until the dump is done
        pin = f"flux-dump.{os.getpid()}"
        try:
            h.rpc("content.pin", {"name": pin, "ref": rootref, "kind": "tree"}).get()
        except OSError:
            pin = None  # a store without pins: nothing collects under us either
        if no_cache:
            store = open_store(h.attr_get("content.backing-path"))
        else:
            load_many = _rpc_loader(h, maxreqs)

    created = outfile != "-" and not os.path.exists(outfile)
    out = None
    try:
        out = archive.ArchiveWriter(outfile, mtime=mtime)

        def add(entry: archive.Entry) -> None:
            if "/" in entry.key:
                progress.warn(f"warning: key {entry.key!r} has '/' in a name: it restores "
                              "as a different key")
            out.add(entry)
            progress.key(entry.key)

        if store is not None:
            with store.reader() as rd:
                for entry in archive.walk(archive.store_loader(rd), rootref, on_error):
                    add(entry)
        else:
            for entry in archive.walk(load_many, rootref, on_error):
                add(entry)
        out.close()
        out = None
    except BaseException:
        if out is not None:
            try:
                out.close()
            except Exception:  # noqa: BLE001, S110 - the first error is the one to report
                pass
        if created:
            try:
                os.unlink(outfile)
            except OSError:
                pass
        raise
    finally:
        if store is not None:
            store.close()
        if pin is not None:
            try:
                h.rpc("content.unpin", {"name": pin}).get()
            except OSError:
                pass
    progress.done()
