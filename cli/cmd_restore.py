"""flux restore: read a KVS snapshot from a tar archive (flux-restore(1)).

``--key=NAME`` writes the archive into the running KVS and makes NAME the
restored directory, in one commit at the end (the tree is built in a
scratch namespace first, so NAME never shows half a restore).
``--checkpoint`` makes the archive the primary namespace's root in the
content store itself, with no kvs running: the store of ``--statedir=DIR``
(our addition; created when DIR has none yet), refused while a broker has
it open -- restore into a running instance with ``--key``, or at start
with ``flux start -Scontent.restore=FILE``.  Exactly one of the two is
required (else exit 2).  INFILE is a path or ``-`` (standard input); the
compression (none, gzip, bzip2, xz) is found from the data.  Values over
``--size-limit`` are skipped with a warning.  A damaged archive, a member
that cannot be a key (absolute, ``..``), or a failed commit: a message
naming it, exit 1, and nothing restored.
"""
from __future__ import annotations

import errno
import os
from typing import Any

import click

from cli.common import handle_errors
from cli.content_store import STATEDIR_HELP, Progress, instance_handle

_CTX = {"help_option_names": ["-h", "--help"]}
_BATCH_OPS = 2048
_BATCH_BYTES = 8 << 20


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from kvs.archive import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _restore_key(h: Any, key: str, entries: Any, progress: Progress) -> None:
    """Commit ENTRIES into a scratch namespace, then link it at KEY in the primary one."""
    import time

    from kvs import treeobj as _t

    scratch = f"restore-{os.getpid()}-{time.time_ns()}"
    created = False
    ops: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal created, ops, size
        body: dict[str, Any] = {"namespace": scratch, "flags": 0, "ops": ops}
        if not created:
            body["create"] = {"owner": -1}
        h.rpc("kvs.commit", body).get()
        created = True
        ops, size = [], 0

    try:
        for entry in entries:
            if entry.target is not None:
                dirent = _t.symlink(entry.target, entry.namespace)
            else:
                dirent = _t.val(entry.data or b"")
            ops.append({"key": entry.key, "flags": 0, "dirent": dirent})
            size += len(entry.data or b"")
            progress.key(entry.key)
            if len(ops) >= _BATCH_OPS or size >= _BATCH_BYTES:
                flush()
        flush()
        h.rpc("kvs.commit", {"namespace": "primary", "flags": 0, "ops": [],
                             "link": {"key": key, "namespace": scratch}}).get()
        created = False  # the link removed it
    finally:
        if created:
            try:
                h.rpc("kvs.namespace-remove", {"namespace": scratch}).get()
            except OSError:
                pass


def _checkpoint_store(statedir: str | None) -> Any:
    from kvs.offline import STORE_DIRNAME, open_store, store_path

    if statedir is None:
        h = instance_handle("restore", "name the stopped instance's store with "
                                       "--statedir=DIR")
        try:
            path = h.attr_get("content.backing-path")
        except OSError:
            path = "its store"
        raise OSError(errno.EBUSY, f"the instance at {h.attr_get('local-uri')} has {path} "
                                   "open: restore --checkpoint needs it shut down (use "
                                   "--statedir=DIR then), or restore with --key=NAME, or at "
                                   "start with flux start -Scontent.restore=FILE")
    try:
        path = store_path(statedir)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        from eventstore.store import Store

        path = os.path.join(statedir, STORE_DIRNAME)
        return Store(path, durability="batch")  # a new instance's store
    return open_store(path, write=True)


@click.command("restore", context_settings=_CTX)
@click.option("-v", "--verbose", is_flag=True, help="List keys on stderr as they are restored")
@click.option("-q", "--quiet", is_flag=True, help="Don't show the count of restored keys")
@click.option("--checkpoint", is_flag=True,
              help="Make the archive the KVS checkpoint in the content store (no KVS running)")
@click.option("--key", metavar="NAME", help="Restore the archive to KVS directory NAME")
@click.option("--no-cache", is_flag=True,
              help="Accepted for compatibility (writes always go through the store)")
@click.option("--size-limit", metavar="SIZE", callback=_size,
              help="Skip values larger than SIZE bytes (suffix k, M or G)")
@click.option("--statedir", metavar="DIR", help=STATEDIR_HELP)
@click.option("--sd-notify", is_flag=True, help="Accepted for compatibility (no systemd here)")
@click.argument("infile")
@handle_errors("restore")
def command(verbose: bool, quiet: bool, checkpoint: bool, key: str | None, no_cache: bool,
            size_limit: int | None, statedir: str | None, sd_notify: bool, infile: str) -> None:
    """Restore a KVS snapshot from INFILE (a tar archive, or - for standard input)."""
    from kvs import archive

    if checkpoint == (key is not None):
        raise click.UsageError("give one of --checkpoint or --key=NAME")
    if statedir is not None and not checkpoint:
        raise click.UsageError("--statedir goes with --checkpoint")
    progress = Progress("restore", "restored", verbose, quiet)

    def skip(k: str, why: str) -> None:
        progress.warn(f"skipping {k}: {why}")

    entries = archive.read_archive(infile, size_limit=size_limit, on_skip=skip)
    if key is not None:
        from kvs import keys as _keys

        _keys.normalize(key)
        h = instance_handle("restore", "--key needs a running instance")
        _restore_key(h, key, entries, progress)
    else:
        if infile != "-" and not os.path.exists(infile):
            raise OSError(errno.ENOENT, f"{infile}: No such file or directory")
        store = _checkpoint_store(statedir)
        try:
            archive.restore_checkpoint(store, entries, on_entry=lambda e: progress.key(e.key))
        finally:
            store.close()
    progress.done()
