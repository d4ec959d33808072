"""flux fsck: check that every blob the KVS checkpoint reaches is present and verifies (flux-fsck(1)).

Starts at the primary namespace's checkpoint in the content store (or
``-r BLOBREF``), then checks the other namespaces' roots and the store's
pins, which GC keeps as well.  Every blob is loaded and its digest
checked; dir blobs must be RFC 11 dirs or hdirs; a valref's blobs must add
up to its size.  Each problem is printed as ``flux-fsck: KEY: what
(BLOBREF)``; keys of other namespaces read ``NS::KEY``.  Reads the store
file directly (through ``content.backing-path`` inside an instance, which
is safe while it runs, or ``--statedir=DIR`` with none).  Exit 0 when the
store is valid, 1 when anything is damaged or cannot be read.

``-R/--repair`` (experimental, as in flux-core; only with ``--statedir`` on
a stopped instance) then commits a new primary root without the dangling
references: a value that lost some of its blobs keeps the others under
``lost+found.KEY``, a key with none left and a directory that cannot be
read are unlinked; a pin whose tree is damaged is dropped (a restart
replays instead of diffing from it); each key's fate is printed.  Other
namespaces are only reported.
"""
from __future__ import annotations

import errno
import sys
from typing import Any

import click

from cli.common import handle_errors
from cli.content_store import STATEDIR_HELP, locate_store

_CTX = {"help_option_names": ["-h", "--help"]}


def _repair(store: Any) -> None:
    """Commit a primary root without the dangling references, and drop the pins of damaged
    trees (snapshots a restart diffs from: it replays instead); say what became of each."""
    from eventstore.checkpoint import PinKind
    from kvs.engine import KVS
    from kvs.fsck import find_damage, repair_ops
    from kvs.txn import Txn

    kvs = KVS(store)
    with store.reader() as rd:
        damage = find_damage(rd.load, kvs.getroot().rootref)
        ops, lines = repair_ops(damage, rd.size)
        unpin = []
        for name, pin in sorted(store.pins().items()):
            if pin.kind == PinKind.TREE:
                broken = bool(find_damage(rd.load, pin.ref))
            else:
                try:
                    rd.load(pin.ref)
                    broken = False
                except OSError:
                    broken = True
            if broken:
                unpin.append(name)
    if ops:
        kvs.commit_one(Txn(ops))
    for name in unpin:
        store.unpin(name)
        lines.append(f"pin {name}: its tree is damaged: unpinned")
    store.sync()
    for line in lines:
        click.echo(f"flux-fsck: repaired {line}", err=True)


@click.command("fsck", context_settings=_CTX)
@click.option("-v", "--verbose", is_flag=True, help="List keys on stderr as they are validated")
@click.option("-q", "--quiet", is_flag=True, help="Print only the damage found")
@click.option("-r", "--rootref", metavar="BLOBREF",
              help="Check the tree of this root dir blobref instead of the checkpoint")
@click.option("-R", "--repair", is_flag=True,
              help="Unlink dangling references in the primary namespace (KVS unloaded; "
                   "experimental)")
@click.option("--statedir", metavar="DIR", help=STATEDIR_HELP)
@handle_errors("fsck")
def command(verbose: bool, quiet: bool, rootref: str | None, repair: bool,
            statedir: str | None) -> None:
    """Check the integrity of the KVS content store."""
    from eventstore.blobref import is_blobref
    from eventstore.checkpoint import PinKind
    from kvs.constants import PRIMARY_NAMESPACE
    from kvs.fsck import FsckResult, Problem, Seen, check_tree, describe_error
    from kvs.offline import open_store

    if rootref is not None and not is_blobref(rootref):
        raise click.BadParameter(f"{rootref!r} is not a blobref", param_hint="--rootref")
    if repair and rootref is not None:
        raise click.UsageError("--repair works on the checkpoint: it cannot go with --rootref")
    path, _h = locate_store("fsck", statedir)
    if repair and statedir is None:
        raise OSError(errno.EBUSY, f"the instance has {path} open: --repair needs the KVS "
                                   "unloaded (shut the instance down, then use --statedir=DIR)")
    store = open_store(path, write=repair)
    total = FsckResult()
    seen = Seen()

    def on_key(key: str) -> None:
        click.echo(key, err=True)

    def report(res: FsckResult) -> None:
        for p in res.problems:
            click.echo(f"flux-fsck: {p}", err=True)
        total.add(res)

    try:
        with store.reader() as rd:
            hook = on_key if verbose else None
            if rootref is not None:
                report(check_tree(rd.load, rootref, on_key=hook, seen_before=seen))
            else:
                roots = store.roots()
                if PRIMARY_NAMESPACE not in roots:
                    raise OSError(errno.ENOENT, f"{path}: no checkpoint of the primary "
                                                "namespace")
                names = [PRIMARY_NAMESPACE] + sorted(n for n in roots if n != PRIMARY_NAMESPACE)
                for ns in names:
                    label = "" if ns == PRIMARY_NAMESPACE else f"{ns}::"
                    report(check_tree(rd.load, roots[ns].rootref, label=label, on_key=hook,
                                      seen_before=seen))
                for name, pin in sorted(store.pins().items()):
                    if pin.kind == PinKind.TREE:
                        report(check_tree(rd.load, pin.ref, label=f"pin {name}::", on_key=hook,
                                          seen_before=seen))
                        continue
                    res = FsckResult()
                    if pin.ref in seen.status:
                        continue
                    try:
                        res.bytes = len(rd.load(pin.ref))
                        res.blobs = 1
                    except OSError as exc:
                        res.problems.append(Problem(f"pin {name}", pin.ref, describe_error(exc)))
                    report(res)
        if repair and total.problems:
            _repair(store)
    finally:
        store.close()
    n = len(total.problems)
    if not quiet:
        click.echo(f"flux-fsck: checked {total.keys} keys, {total.dirs} directories, "
                   f"{total.blobs} blobs ({total.bytes} bytes): "
                   f"{n} error{'s' if n != 1 else ''}", err=True)
    if n:
        sys.exit(1)
