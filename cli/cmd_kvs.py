"""flux kvs: inspect and change the key-value store (flux-kvs(1)).

Output follows flux-kvs(1): ``get`` prints each value and a newline (none
for an empty value), ``-l`` prefixes ``key=``, ``-r`` writes the bytes
as they are, ``-t`` prints the RFC 11 object; ``dir`` prints ``key =
value`` lines cut to the terminal width with ``...``; ``ls`` arranges names
in columns like ls(1).  A failed lookup prints ``flux-kvs: KEY: <reason>``
and exits 1; bad usage exits 2.  ``eventlog get``/``wait-event`` print
events with flux.eventlog.EventLogFormatter (``-u``: the RFC 18 line).
"""
from __future__ import annotations

import errno
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import click

from cli.common import die, handle_errors
from cli.optional_values import OptionalValueCommand

if TYPE_CHECKING:
    from flux.core.handle import Flux

_CTX = {"help_option_names": ["-h", "--help"]}
# errnos whose standard text says it all; for others the service's text names the problem
_PLAIN = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EPERM, errno.ENOTSUP, errno.EEXIST,
          errno.ELOOP, errno.ENOTEMPTY, errno.EFBIG}
_DIRS = ("dir", "dirref", "hdir")


def _reason(exc: OSError) -> str:
    if exc.errno in _PLAIN:
        return os.strerror(exc.errno)
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


def _fail(what: str, exc: OSError) -> NoReturn:
    text = _reason(exc)
    die("kvs", text if text.startswith(f"{what}: ") else f"{what}: {text}")


def _handle() -> "Flux":
    import flux

    return flux.Flux()


_TXN_CLASS: Any = None


def _check_key(key: str) -> None:
    """OSError EINVAL naming KEY and its problem if no write may name it.

    The root directory ("." or only dots) is a valid key to read but can
    never be replaced or removed; Flux's library refuses it with a bare
    "Invalid argument" that does not say why.
    """
    from flux.errors import FluxError
    from kvs.keys import ROOT, parse

    try:
        _parts, norm = parse(key)
    except OSError as exc:
        raise FluxError(exc.errno or errno.EINVAL, f"{key}: {exc.strerror}") from None
    if norm == ROOT:
        raise FluxError(errno.EINVAL,
                        f"{key}: invalid key {key!r}: the root directory cannot be "
                        "replaced or removed")


def _txn(h: "Flux", namespace: str | None = None) -> Any:
    """A flux.kvs.KVSTxn whose refusal of a bad key names the key and the problem.

    The Python API refuses a bad key with a bare EINVAL, as Flux's does; the
    command says what is wrong with it.
    """
    global _TXN_CLASS
    if _TXN_CLASS is None:
        import flux.kvs
        from flux.errors import FluxError
        class _Txn(flux.kvs.KVSTxn):
            def _add(self, key: str, flags: int, dirent: Any) -> None:
                if isinstance(key, str):
                    try:
                        _check_key(self._prefix + key)
                    except OSError as exc:
                        raise FluxError(exc.errno or errno.EINVAL, exc.strerror) from None
                super()._add(key, flags, dirent)

        _TXN_CLASS = _Txn
    return _TXN_CLASS(h, namespace=namespace)


def _ns_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-N", "--namespace", metavar="NS", default=None,
                        help="Use KVS namespace NS")(fn)


def _stream_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    # flux-core's --stream splits a large value over several responses; a value
    # here always comes in one, so it changes nothing but is refused with --watch
    return click.option("-S", "--stream", is_flag=True,
                        help="Accepted for compatibility (a value comes in one response)")(fn)


def _commit_output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("-b", "--blobref", is_flag=True,
                      help="Print the root blobref of the commit")(fn)
    fn = click.option("-s", "--sequence", is_flag=True,
                      help="Print the root sequence number of the commit")(fn)
    return click.option("-O", "--treeobj-root", is_flag=True,
                        help="Print the RFC 11 root object of the commit")(fn)


def _exclusive(**flags: bool) -> None:
    given = [f"--{name.replace('_', '-')}" for name, on in flags.items() if on]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} cannot be used together")


def _dumps(obj: Any) -> str:
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def _parse_treeobj(text: str | bytes, what: str) -> dict[str, Any]:
    import orjson

    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        die("kvs", f"{what}: invalid treeobj JSON: {exc}")
    if not isinstance(obj, dict):
        die("kvs", f"{what}: a treeobj must be a JSON object")
    return obj


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)


def _finish_commit(future: Any, treeobj_root: bool, sequence: bool, blobref: bool) -> None:
    resp = future.get()
    if treeobj_root:
        click.echo(_dumps({"ver": 1, "type": "dirref", "data": [resp["rootref"]]}))
    elif sequence:
        click.echo(resp["sequence"])
    elif blobref:
        click.echo(resp["rootref"])


def _window_width(width: int | None) -> int:
    if width is not None:
        return width
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        pass
    try:
        cols = int(os.environ.get("COLUMNS", ""))
        if cols >= 0:
            return cols
    except ValueError:
        pass
    return 80


@click.group("kvs", context_settings=_CTX)
def command() -> None:
    """Flux key-value store."""


# -- namespaces ------------------------------------------------------------------------


@command.group("namespace", context_settings=_CTX)
def namespace() -> None:
    """Create, remove and list KVS namespaces."""


@namespace.command("create")
@click.option("-o", "--owner", type=click.IntRange(min=0), default=None,
              help="User id of the namespace owner (default: the instance owner)")
@click.option("-r", "--rootref", metavar="BLOBREF",
              help="Initial root directory: a blobref or an RFC 11 dirref "
                   "(default: an empty directory)")
@click.argument("names", nargs=-1, required=True)
@handle_errors("kvs")
def namespace_create(owner: int | None, rootref: str | None, names: tuple[str, ...]) -> None:
    """Create namespaces NAMES."""
    payload: dict[str, Any] = {"owner": -1 if owner is None else owner, "flags": 0}
    if rootref is not None:
        payload["rootref"] = _rootref(rootref)
    h = _handle()
    for name in names:
        try:
            h.rpc("kvs.namespace-create", {"namespace": name, **payload}).get()
        except OSError as exc:
            _fail(name, exc)


def _rootref(text: str) -> str:
    """The blobref of --rootref: given as is, or as the dirref ``getroot`` prints."""
    if not text.lstrip().startswith("{"):
        return text
    obj = _parse_treeobj(text, "--rootref")
    data = obj.get("data")
    if obj.get("type") != "dirref" or not isinstance(data, list) or len(data) != 1 \
            or not isinstance(data[0], str):
        die("kvs", "--rootref: a treeobj must be a dirref with one blobref")
    return data[0]


@namespace.command("remove")
@click.argument("names", nargs=-1, required=True)
@handle_errors("kvs")
def namespace_remove(names: tuple[str, ...]) -> None:
    """Remove namespaces NAMES."""
    h = _handle()
    for name in names:
        try:
            h.rpc("kvs.namespace-remove", {"namespace": name}).get()
        except OSError as exc:
            _fail(name, exc)


@namespace.command("list")
@handle_errors("kvs")
def namespace_list() -> None:
    """List namespaces with their owner and flags."""
    resp = _handle().rpc("kvs.namespace-list", {}).get()
    lines = ["NAMESPACE                                 OWNER      FLAGS"]
    for ns in resp["namespaces"]:
        lines.append(f"{ns['namespace']:<36} {ns['owner']:>10} 0x{ns['flags']:08X}")
    click.echo("\n".join(lines))


# -- get ------------------------------------------------------------------------------------


class _Printer:
    """Prints lookup results as ``flux kvs get`` does."""

    def __init__(self, raw: bool, treeobj: bool, label: bool) -> None:
        self.raw = raw
        self.treeobj = treeobj
        self.label = label

    def __call__(self, key: str, val: dict[str, Any]) -> None:
        from flux.kvs import val_data

        prefix = f"{key}=".encode() if self.label else b""
        if self.treeobj:
            _write(prefix + _dumps(val).encode() + b"\n")
        else:
            data = val_data(val)
            if self.raw:
                _write(prefix + data)
            else:
                _write(prefix + (data + b"\n" if data else b""))
        sys.stdout.flush()


@command.command("get")
@_ns_option
@click.option("-r", "--raw", is_flag=True, help="Print the value as is, without a newline")
@click.option("-t", "--treeobj", is_flag=True, help="Print the RFC 11 object")
@click.option("-a", "--at", "at", metavar="TREEOBJ", help="Look up in the RFC 11 snapshot TREEOBJ")
@click.option("-l", "--label", is_flag=True, help="Print key= before each value")
@click.option("-W", "--waitcreate", is_flag=True, help="Wait for the key to be created")
@click.option("-w", "--watch", is_flag=True, help="Print the value each time the key is written")
@click.option("-u", "--uniq", is_flag=True, help="With -w: only values that changed")
@click.option("-A", "--append", is_flag=True, help="With -w: only the appended data")
@click.option("-f", "--full", is_flag=True,
              help="With -w: also notice changes not naming the key (e.g. a parent replaced)")
@click.option("-c", "--count", type=click.IntRange(min=0), default=0, metavar="COUNT",
              help="With -w: stop after COUNT values")
@_stream_option
@click.argument("keys", nargs=-1, required=True)
@handle_errors("kvs")
def get(namespace: str | None, raw: bool, treeobj: bool, at: str | None, label: bool,
        waitcreate: bool, watch: bool, uniq: bool, append: bool, full: bool, count: int,
        stream: bool, keys: tuple[str, ...]) -> None:
    """Print the values of KEYS."""
    from kvs import constants as c

    _exclusive(raw=raw, treeobj=treeobj)
    _exclusive(stream=stream, watch=watch)
    if at is not None and (watch or waitcreate):
        raise click.UsageError("--at cannot be combined with --watch or --waitcreate")
    if (uniq or append or full or count) and not watch:
        raise click.UsageError("--uniq, --append, --full and --count need --watch")
    rootdir = _parse_treeobj(at, "--at") if at is not None else None
    flags = c.FLUX_KVS_TREEOBJ if treeobj else 0
    if watch:
        flags |= c.FLUX_KVS_WATCH
        flags |= (c.FLUX_KVS_WATCH_FULL if full else 0) | (c.FLUX_KVS_WATCH_UNIQ if uniq else 0)
        flags |= c.FLUX_KVS_WATCH_APPEND if append else 0
    if waitcreate:
        flags |= c.FLUX_KVS_WAITCREATE
    printer = _Printer(raw, treeobj, label)
    h = _handle()
    if watch:
        _get_watch(h, keys, flags, namespace, count, printer)
        return
    import flux.kvs

    for key in keys:
        if waitcreate:
            future = flux.kvs.lookup_wait(h, key, flags, namespace)
        else:
            future = flux.kvs.lookup(h, key, flags, namespace, rootdir)
        try:
            resp = future.get()
        except OSError as exc:
            _fail(key, exc)
        printer(key, resp["val"])


def _get_watch(h: "Flux", keys: tuple[str, ...], flags: int, namespace: str | None,
               count: int, printer: _Printer) -> None:
    import flux.kvs

    seen = {"n": 0}

    def on_response(future: Any, key: str) -> None:
        try:
            resp = future.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return
            _fail(key, exc)
        future.reset()
        printer(key, resp["val"])
        seen["n"] += 1
        if count and seen["n"] == count:
            for f in futures:
                flux.kvs.watch_cancel(h, f)

    futures = []
    for key in keys:
        futures.append(flux.kvs.watch(h, key, flags, namespace).then(on_response, key))
    h.reactor_run()


# -- put ------------------------------------------------------------------------------------


def _stdin_bytes() -> bytes:
    return sys.stdin.buffer.read()


@command.command("put")
@_ns_option
@_commit_output_options
@click.option("-r", "--raw", is_flag=True, help="Store the value as bytes ('-': read stdin)")
@click.option("-t", "--treeobj", is_flag=True, help="Store an RFC 11 object ('-': read stdin)")
@click.option("-n", "--no-merge", is_flag=True, help="Do not merge with other commits")
@click.option("-A", "--append", is_flag=True, help="Append to the key instead of replacing it")
@click.option("-S", "--sync", is_flag=True,
              help="Answer only once the commit is on stable storage and checkpointed")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@handle_errors("kvs")
def put(namespace: str | None, treeobj_root: bool, sequence: bool, blobref: bool, raw: bool,
        treeobj: bool, no_merge: bool, append: bool, sync: bool, pairs: tuple[str, ...]) -> None:
    """Store each VALUE under KEY and commit them together."""
    from kvs.constants import FLUX_KVS_NO_MERGE
    from kvs.txn import FLUX_KVS_SYNC

    _exclusive(raw=raw, treeobj=treeobj)
    _exclusive(treeobj_root=treeobj_root, sequence=sequence, blobref=blobref)
    if append and treeobj:
        raise click.UsageError("--append cannot be used with --treeobj")
    h = _handle()
    txn = _txn(h, namespace=namespace)
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            die("kvs", "put: you must specify a value as key=value")
        if treeobj:
            text = _stdin_bytes() if value == "-" else value
            txn.put_treeobj(key, _parse_treeobj(text, key))
            continue
        data = _stdin_bytes() if raw and value == "-" else os.fsencode(value)
        if append:
            txn.append(key, data)
        else:
            txn.put_raw(key, data)
    future = txn.commit_async((FLUX_KVS_NO_MERGE if no_merge else 0)
                              | (FLUX_KVS_SYNC if sync else 0))
    try:
        _finish_commit(future, treeobj_root, sequence, blobref)
    except OSError as exc:
        _fail(pairs[0].partition("=")[0] if len(pairs) == 1 else "commit", exc)


# -- dir ------------------------------------------------------------------------------------


def _kv_line(key: str | None, value: str, maxcol: int) -> str:
    """One ``key = value`` line, cut to MAXCOL columns (0: no limit) with '...'."""
    if 0 < maxcol <= 3:
        maxcol = 0
    text = f"{key} = {value}" if key is not None else value
    overflow = False
    if maxcol:
        if len(text) > maxcol - 3:
            text = text[:maxcol - 3]
            overflow = True
        nl = text.find("\n")
        if nl >= 0:
            if text[nl + 1:]:
                overflow = True
            text = text[:nl]
        for i, ch in enumerate(text):
            if not ch.isprintable():
                text = text[:i]
                overflow = True
                break
    return text + ("..." if overflow else "")


class _Reader:
    """Lookups relative to one namespace, or to a snapshot when --at is given."""

    def __init__(self, h: "Flux", namespace: str | None, rootdir: dict[str, Any] | None) -> None:
        self.h = h
        self.namespace = namespace
        self.rootdir = rootdir

    def lookup(self, key: str, flags: int) -> dict[str, Any]:
        import flux.kvs

        try:
            return flux.kvs.lookup(self.h, key, flags, self.namespace, self.rootdir).get()["val"]
        except OSError as exc:
            _fail(key, exc)

    def readdir(self, key: str) -> dict[str, Any]:
        from kvs.constants import FLUX_KVS_READDIR

        return self.lookup(key, FLUX_KVS_READDIR)["data"]


def _key_at(dirkey: str, name: str) -> str:
    return name if dirkey in (".", "") else f"{dirkey}.{name}"


def _dump_dir(rd: _Reader, dirkey: str, entries: dict[str, Any], maxcol: int, recursive: bool,
              keys_only: bool, out: list[str]) -> None:
    import flux.kvs

    # start the lookups of valrefs together, then print in order
    pending = {name: flux.kvs.lookup(rd.h, _key_at(dirkey, name), 0, rd.namespace, rd.rootdir)
               for name, obj in entries.items()
               if obj.get("type") == "valref" and not keys_only}
    for name, obj in entries.items():
        key = _key_at(dirkey, name)
        kind = obj.get("type")
        if kind == "symlink":
            data = obj["data"]
            target = f"{data['namespace']}::{data['target']}" if "namespace" in data \
                else data["target"]
            out.append(f"{key} -> {target}")
        elif kind in _DIRS:
            if not recursive:
                out.append(f"{key}.")
                continue
            sub = obj["data"] if kind == "dir" else rd.readdir(key)
            if sub:
                _dump_dir(rd, key, dict(sorted(sub.items())), maxcol, recursive, keys_only, out)
            else:
                out.append(f"{key}.")
        elif keys_only:
            out.append(key)
        else:
            if name in pending:
                try:
                    obj = pending[name].get()["val"]
                except OSError as exc:
                    _fail(key, exc)
            text = flux.kvs.val_data(obj).decode("utf-8", errors="replace")
            out.append(_kv_line(key, text, maxcol))


@command.command("dir")
@_ns_option
@click.option("-R", "--recursive", is_flag=True, help="Show keys under subdirectories too")
@click.option("-d", "--directory", is_flag=True, help="Show keys only, not values")
@click.option("-w", "--width", type=click.IntRange(min=0), default=None, metavar="COLS",
              help="Cut lines to COLS columns (0: no limit)")
@click.option("-a", "--at", "at", metavar="TREEOBJ", help="Look up in the RFC 11 snapshot TREEOBJ")
@click.argument("key", required=False, default=".")
@handle_errors("kvs")
def dir_(namespace: str | None, recursive: bool, directory: bool, width: int | None,
         at: str | None, key: str) -> None:
    """Print every key and value under directory KEY (default: the root)."""
    rootdir = _parse_treeobj(at, "--at") if at is not None else None
    rd = _Reader(_handle(), namespace, rootdir)
    entries = rd.readdir(key)
    out: list[str] = []
    _dump_dir(rd, "." if key.strip(".") == "" else key.strip("."), entries,
              _window_width(width), recursive, directory, out)
    if out:
        click.echo("\n".join(out))


# -- ls -------------------------------------------------------------------------------------


def _columns(names: list[str], width: int, colwidth: int) -> list[str]:
    """Names laid out left to right in columns of COLWIDTH within WIDTH (0: one line)."""
    lines: list[str] = []
    line = ""
    col = 0
    last = 0
    for name in names:
        if width != 0 and col + colwidth > width and col > 0:
            lines.append(line)
            line, col = "", 0
        elif last > 0:
            line += " " * (colwidth - last)
        line += name
        last = len(name)
        col += colwidth
    if col > 0:
        lines.append(line)
    return lines


def _decorate(name: str, obj: dict[str, Any], classify: bool) -> str:
    if not classify:
        return name
    kind = obj.get("type")
    if kind in _DIRS:
        return name + "."
    if kind == "symlink":
        return name + "@"
    return name


def _list_dir(rd: _Reader, key: str, width: int, classify: bool, recursive: bool, label: bool,
              vspace: bool, out: list[str]) -> None:
    entries = rd.readdir(key)
    if label:
        if vspace:
            out.append("")
        out.append(f"{key}:")
    names = sorted(entries)
    colwidth = max((len(n) for n in names), default=0) + 4
    out.extend(_columns([_decorate(n, entries[n], classify) for n in names], width, colwidth))
    if recursive:
        for name in names:
            if entries[name].get("type") in _DIRS:
                _list_dir(rd, _key_at(key, name), width, classify, recursive, True, True, out)


@command.command("ls")
@_ns_option
@click.option("-R", "--recursive", is_flag=True, help="List directories recursively")
@click.option("-d", "--directory", is_flag=True, help="List directories, not their contents")
@click.option("-F", "--classify", is_flag=True, help="Mark directories with '.' and symlinks with '@'")
@click.option("-w", "--width", type=click.IntRange(min=0), default=None, metavar="COLS",
              help="Output width (0: no limit)")
@click.option("-1", "--1", "one_column", is_flag=True, help="One entry per line")
@click.argument("keys", nargs=-1)
@handle_errors("kvs")
def ls(namespace: str | None, recursive: bool, directory: bool, classify: bool,
       width: int | None, one_column: bool, keys: tuple[str, ...]) -> None:
    """List directory KEYS (default: the root), like ls(1)."""
    from kvs.constants import FLUX_KVS_TREEOBJ

    win = 1 if one_column else _window_width(width)
    rd = _Reader(_handle(), namespace, None)
    import flux.kvs

    dirs: list[str] = []
    singles: list[str] = []
    failed = False
    for key in keys or (".",):
        nkey = key
        must_be_dir = False
        while len(nkey) > 1 and nkey.endswith("."):
            nkey = nkey[:-1]
            must_be_dir = True
        try:
            obj = flux.kvs.lookup(rd.h, nkey, FLUX_KVS_TREEOBJ, namespace).get()["val"]
        except OSError as exc:
            click.echo(f"{nkey}: {_reason(exc)}", err=True)
            failed = True
            continue
        kind = obj.get("type")
        if kind in _DIRS:
            if directory:
                singles.append(nkey + "." if classify else nkey)
            else:
                dirs.append(nkey)
        elif must_be_dir:
            click.echo(f"{nkey}: Not a directory", err=True)
            failed = True
        elif kind == "symlink":
            if classify or directory:
                singles.append(nkey + "@" if classify else nkey)
                continue
            try:
                flux.kvs.lookup(rd.h, nkey, 0, namespace).get()
                singles.append(nkey)
            except OSError as exc:
                if exc.errno == errno.EISDIR:
                    dirs.append(nkey)
                elif exc.errno == errno.ENOENT:
                    singles.append(nkey)
                else:
                    click.echo(f"{nkey}: {_reason(exc)}", err=True)
                    failed = True
        else:
            singles.append(nkey)
    out: list[str] = []
    label = vspace = False
    if singles:
        singles.sort()
        out.extend(_columns(singles, win, max(len(s) for s in singles) + 4))
        label = vspace = True
    if recursive or len(dirs) > 1:
        label = True
    for key in sorted(dirs):
        _list_dir(rd, key, win, classify, recursive, label, vspace, out)
        vspace = True
    if out:
        click.echo("\n".join(out))
    if failed:
        sys.exit(1)


# -- unlink, link, readlink, mkdir ------------------------------------------------------


@command.command("unlink")
@_ns_option
@_commit_output_options
@click.option("-R", "--recursive", is_flag=True, help="Remove directories and their contents")
@click.option("-f", "--force", is_flag=True, help="Ignore keys that do not exist")
@click.argument("keys", nargs=-1, required=True)
@handle_errors("kvs")
def unlink(namespace: str | None, treeobj_root: bool, sequence: bool, blobref: bool,
           recursive: bool,
           force: bool, keys: tuple[str, ...]) -> None:
    """Remove KEYS and commit."""
    import flux.kvs
    from kvs.constants import FLUX_KVS_READDIR, FLUX_KVS_TREEOBJ, FLUX_KVS_UNLINK_NODIR

    _exclusive(treeobj_root=treeobj_root, sequence=sequence, blobref=blobref)
    h = _handle()
    txn = _txn(h, namespace=namespace)
    for key in keys:
        try:
            obj = flux.kvs.lookup(h, key, FLUX_KVS_TREEOBJ, namespace).get()["val"]
        except OSError as exc:
            if exc.errno == errno.ENOENT and force:
                continue
            die("kvs", f"cannot unlink '{key}': {_reason(exc)}")
        kind = obj.get("type")
        if kind in _DIRS and not recursive:
            entries = obj["data"] if kind == "dir" else \
                flux.kvs.lookup(h, key, FLUX_KVS_READDIR, namespace).get()["val"]["data"]
            if entries:
                die("kvs", f"cannot unlink '{key}': {os.strerror(errno.ENOTEMPTY)}")
            txn.unlink(key)
        elif recursive:
            txn.unlink(key)
        else:
            # the commit itself refuses if KEY became a directory since the lookup
            txn.ops.append({"key": key, "flags": FLUX_KVS_UNLINK_NODIR, "dirent": None})
    try:
        _finish_commit(txn.commit_async(), treeobj_root, sequence, blobref)
    except OSError as exc:
        _fail(keys[0] if len(keys) == 1 else "commit", exc)


@command.command("link")
@_ns_option
@click.option("-T", "--target-namespace", metavar="NS", default=None,
              help="Namespace of the target")
@_commit_output_options
@click.argument("target")
@click.argument("linkname")
@handle_errors("kvs")
def link(namespace: str | None, target_namespace: str | None, treeobj_root: bool,
         sequence: bool, blobref: bool, target: str, linkname: str) -> None:
    """Make LINKNAME a symbolic link to TARGET (which need not exist)."""

    _exclusive(treeobj_root=treeobj_root, sequence=sequence, blobref=blobref)
    txn = _txn(_handle(), namespace=namespace)
    txn.symlink(linkname, target, target_namespace)
    try:
        _finish_commit(txn.commit_async(), treeobj_root, sequence, blobref)
    except OSError as exc:
        _fail(linkname, exc)


@command.command("readlink")
@_ns_option
@click.option("-a", "--at", "at", metavar="TREEOBJ", help="Look up in the RFC 11 snapshot TREEOBJ")
@click.option("-o", "--namespace-only", is_flag=True, help="Print only the target's namespace")
@click.option("-k", "--key-only", is_flag=True, help="Print only the target key")
@click.argument("keys", nargs=-1, required=True)
@handle_errors("kvs")
def readlink(namespace: str | None, at: str | None, namespace_only: bool, key_only: bool,
             keys: tuple[str, ...]) -> None:
    """Print the targets of symbolic links KEYS (NS::KEY for one into another namespace)."""
    from kvs.constants import FLUX_KVS_READLINK

    _exclusive(namespace_only=namespace_only, key_only=key_only)
    rootdir = _parse_treeobj(at, "--at") if at is not None else None
    rd = _Reader(_handle(), namespace, rootdir)
    for key in keys:
        data = rd.lookup(key, FLUX_KVS_READLINK)["data"]
        linkns, target = data.get("namespace"), data["target"]
        if namespace_only and linkns:
            click.echo(linkns)
        elif key_only or not linkns:
            click.echo(target)
        else:
            click.echo(f"{linkns}::{target}")


@command.command("mkdir")
@_ns_option
@_commit_output_options
@click.argument("keys", nargs=-1, required=True)
@handle_errors("kvs")
def mkdir(namespace: str | None, treeobj_root: bool, sequence: bool, blobref: bool,
          keys: tuple[str, ...]) -> None:
    """Create empty directories KEYS (replacing what is there) and commit."""

    _exclusive(treeobj_root=treeobj_root, sequence=sequence, blobref=blobref)
    txn = _txn(_handle(), namespace=namespace)
    for key in keys:
        txn.mkdir(key)
    try:
        _finish_commit(txn.commit_async(), treeobj_root, sequence, blobref)
    except OSError as exc:
        _fail(keys[0] if len(keys) == 1 else "commit", exc)


# -- copy, move -------------------------------------------------------------------------------


def _copy(src_ns: str | None, dst_ns: str | None, src: str, dst: str, move: bool) -> None:
    import flux.kvs
    from kvs.constants import FLUX_KVS_TREEOBJ

    h = _handle()
    try:
        obj = flux.kvs.lookup(h, src, FLUX_KVS_TREEOBJ, src_ns).get()["val"]
    except OSError as exc:
        _fail(src, exc)
    same = flux.kvs.resolve_namespace(src_ns) == flux.kvs.resolve_namespace(dst_ns)
    txn = _txn(h, namespace=dst_ns)
    txn.put_treeobj(dst, obj)
    if move and same:
        txn.unlink(src)  # one transaction: never both or neither missing
    try:
        txn.commit_async().get()
    except OSError as exc:
        _fail(dst, exc)
    if move and not same:
        rm = _txn(h, namespace=src_ns)
        rm.unlink(src)
        try:
            rm.commit_async().get()
        except OSError as exc:
            _fail(src, exc)


@command.command("copy")
@click.option("-S", "--src-namespace", metavar="NS", default=None, help="Namespace of SOURCE")
@click.option("-D", "--dst-namespace", metavar="NS", default=None, help="Namespace of DESTINATION")
@click.argument("source")
@click.argument("destination")
@handle_errors("kvs")
def copy(src_namespace: str | None, dst_namespace: str | None, source: str,
         destination: str) -> None:
    """Copy SOURCE to DESTINATION (a directory by reference, not recursively)."""
    _copy(src_namespace, dst_namespace, source, destination, move=False)


@command.command("move")
@click.option("-S", "--src-namespace", metavar="NS", default=None, help="Namespace of SOURCE")
@click.option("-D", "--dst-namespace", metavar="NS", default=None, help="Namespace of DESTINATION")
@click.argument("source")
@click.argument("destination")
@handle_errors("kvs")
def move(src_namespace: str | None, dst_namespace: str | None, source: str,
         destination: str) -> None:
    """Copy SOURCE to DESTINATION, then unlink SOURCE."""
    _copy(src_namespace, dst_namespace, source, destination, move=True)


# -- cache, versions, root ---------------------------------------------------------------------


@command.command("dropcache")
@click.option("-a", "--all", "all_ranks", is_flag=True,
              help="Tell every KVS module of the instance (an event)")
@handle_errors("kvs")
def dropcache(all_ranks: bool) -> None:
    """Tell the KVS to drop its cache."""
    h = _handle()
    if all_ranks:
        h.event_publish("kvs.dropcache").get()
    else:
        h.rpc("kvs.dropcache", {}).get()


@command.command("version")
@_ns_option
@handle_errors("kvs")
def version(namespace: str | None) -> None:
    """Print the KVS version (the root sequence number)."""
    import flux.kvs

    click.echo(flux.kvs.get_version(_handle(), namespace))


@command.command("wait")
@_ns_option
@click.argument("version", type=click.IntRange(min=0))
@handle_errors("kvs")
def wait(namespace: str | None, version: int) -> None:
    """Wait until the KVS version is at least VERSION."""
    import flux.kvs

    flux.kvs.wait_version(_handle(), version, namespace)


@command.command("getroot")
@_ns_option
@click.option("-s", "--sequence", is_flag=True, help="Print the sequence number")
@click.option("-o", "--owner", is_flag=True, help="Print the owner")
@click.option("-b", "--blobref", is_flag=True, help="Print the root blobref")
@handle_errors("kvs")
def getroot(namespace: str | None, sequence: bool, owner: bool, blobref: bool) -> None:
    """Print the current root as an RFC 11 dirref."""
    import flux.kvs

    _exclusive(sequence=sequence, owner=owner, blobref=blobref)
    resp = _handle().rpc("kvs.getroot", {"namespace": flux.kvs.resolve_namespace(namespace)}).get()
    if owner:
        click.echo(resp["owner"])
    elif sequence:
        click.echo(resp["sequence"])
    elif blobref:
        click.echo(resp["rootref"])
    else:
        click.echo(_dumps(resp["treeobj"]))


# -- eventlogs ----------------------------------------------------------------------------------


@command.group("eventlog", context_settings=_CTX)
def eventlog() -> None:
    """Append to, print and wait on RFC 18 eventlogs."""


@eventlog.command("append")
@_ns_option
@click.option("-t", "--timestamp", type=float, default=None, metavar="SECONDS",
              help="Event time, seconds since the epoch (default: now)")
@click.argument("key")
@click.argument("name")
@click.argument("context", nargs=-1)
@handle_errors("kvs")
def eventlog_append(namespace: str | None, timestamp: float | None, key: str, name: str,
                    context: tuple[str, ...]) -> None:
    """Append event NAME with optional JSON object CONTEXT to the eventlog KEY."""
    import orjson

    import flux.kvs

    ctx = None
    if context:
        text = " ".join(context)
        try:
            ctx = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            die("kvs", f"context is not valid JSON: {exc}")
        if not isinstance(ctx, dict):
            die("kvs", f"context must be a JSON object, not {text}")
    if timestamp == 0:
        timestamp = None  # flux-core's default value: the wall clock
    if timestamp is not None and not timestamp > 0:
        die("kvs", f"timestamp must be a positive number of seconds, not {timestamp}")
    try:
        _check_key(key)  # a bad key: named with the problem
        flux.kvs.eventlog_append(_handle(), key, name, ctx, timestamp, namespace)
    except OSError as exc:
        _fail(key, exc)


def _formatter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("-u", "--unformatted", is_flag=True, help="Print events in RFC 18 form"),
        click.option("-f", "--format", "entry_format", default="text", show_default=True,
                     type=click.Choice(["text", "json"]), help="Output format"),
        click.option("-T", "--time-format", default="raw", show_default=True,
                     type=click.Choice(["raw", "iso", "offset", "human"]), help="Timestamp format"),
        click.option("-H", "--human", is_flag=True,
                     help="Human-readable timestamps, color on a terminal"),
        click.option("-L", "--color", is_flag=False, flag_value="always", default="auto",
                     type=click.Choice(["always", "never", "auto"]), metavar="[WHEN]",
                     help="Colorize output (WHEN: always, never, auto)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _event_printer(unformatted: bool, entry_format: str, time_format: str, human: bool,
                   color: str) -> Callable[[dict[str, Any]], None]:
    import orjson

    if unformatted:
        return lambda ev: click.echo(orjson.dumps(ev).decode())
    from flux.eventlog import EventLogFormatter

    if human:
        time_format = "human"
    fmt = EventLogFormatter(format=entry_format, timestamp_format=time_format, color=color)
    # not click.echo: it strips the color codes --color=always asks for when not on a tty
    return lambda ev: sys.stdout.write(fmt.format(ev) + "\n")


class _EventStream:
    """Events of an eventlog from lookups or an append watch, decoded as they come."""

    def __init__(self, key: str) -> None:
        from eventstore.eventlog import EventlogDecoder

        self.key = key
        self.decoder = EventlogDecoder()

    def feed(self, val: dict[str, Any]) -> list[dict[str, Any]]:
        from eventstore.eventlog import EventlogError
        from flux.kvs import val_data

        try:
            return self.decoder.feed(val_data(val))
        except EventlogError as exc:
            die("kvs", f"{self.key}: {exc}")

    def close(self) -> None:
        """The whole log has been fed: a partial last line is an error."""
        from eventstore.eventlog import EventlogError

        try:
            self.decoder.close()
        except EventlogError as exc:
            die("kvs", f"{self.key}: {exc}")


@eventlog.command("get", cls=OptionalValueCommand)
@_ns_option
@click.option("-W", "--waitcreate", is_flag=True, help="Wait for the eventlog to be created")
@click.option("-w", "--watch", is_flag=True, help="Print new events as they are committed")
@click.option("-c", "--count", type=click.IntRange(min=0), default=0, metavar="COUNT",
              help="Print at most COUNT events")
@_stream_option
@_formatter_options
@click.argument("key")
@handle_errors("kvs")
def eventlog_get(namespace: str | None, waitcreate: bool, watch: bool, count: int,
                 stream: bool, unformatted: bool, entry_format: str, time_format: str,
                 human: bool, color: str, key: str) -> None:
    """Print the eventlog KEY."""
    import flux.kvs
    from kvs import constants as c

    _exclusive(stream=stream, watch=watch)

    show = _event_printer(unformatted, entry_format, time_format, human, color)
    stream = _EventStream(key)
    h = _handle()
    flags = (c.FLUX_KVS_WATCH | c.FLUX_KVS_WATCH_APPEND if watch else 0) | \
        (c.FLUX_KVS_WAITCREATE if waitcreate else 0)
    if not watch:
        if waitcreate:
            future = flux.kvs.lookup_wait(h, key, flags, namespace)
        else:
            future = flux.kvs.lookup(h, key, 0, namespace)
        try:
            events = stream.feed(future.get()["val"])
        except OSError as exc:
            _fail(key, exc)
        stream.close()
        for ev in events[:count or None]:
            show(ev)
        return
    future = flux.kvs.watch(h, key, flags, namespace)
    shown = 0
    while True:
        try:
            resp = future.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return
            _fail(key, exc)
        future.reset()
        for ev in stream.feed(resp["val"]):
            show(ev)
            shown += 1
            if count and shown >= count:
                sys.stdout.flush()
                flux.kvs.watch_cancel(h, future)
                return
        sys.stdout.flush()


@eventlog.command("wait-event", cls=OptionalValueCommand)
@_ns_option
@click.option("-t", "--timeout", metavar="DURATION", default=None,
              help="Give up after DURATION (FSD, e.g. 1.5s, 2m)")
@click.option("-W", "--waitcreate", is_flag=True, help="Wait for the eventlog to be created")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the matched event")
@click.option("-v", "--verbose", is_flag=True, help="Also print the events before it")
@_formatter_options
@click.argument("key")
@click.argument("event")
@handle_errors("kvs")
def eventlog_wait_event(namespace: str | None, timeout: str | None, waitcreate: bool,
                        quiet: bool, verbose: bool, unformatted: bool, entry_format: str,
                        time_format: str, human: bool, color: str, key: str,
                        event: str) -> None:
    """Wait until event EVENT appears in the eventlog KEY; print it."""
    import flux.kvs
    from flux.util.fsd import parse_fsd
    from kvs import constants as c

    limit = None
    if timeout is not None:
        try:
            limit = parse_fsd(timeout)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'-t' / '--timeout'") from None
    show = _event_printer(unformatted, entry_format, time_format, human, color)
    stream = _EventStream(key)
    h = _handle()
    flags = c.FLUX_KVS_WATCH | c.FLUX_KVS_WATCH_APPEND | (c.FLUX_KVS_WAITCREATE if waitcreate else 0)
    future = flux.kvs.watch(h, key, flags, namespace)
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        try:
            if deadline is not None:
                future.wait_for(max(0.0, deadline - time.monotonic()))
            resp = future.get()
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                die("kvs", f"wait-event timeout on event '{event}'")
            if exc.errno == errno.ENOENT:
                die("kvs", f"eventlog path {key} not found")
            if exc.errno == errno.ENODATA:
                die("kvs", f"event '{event}' never received")
            _fail(key, exc)
        future.reset()
        for ev in stream.feed(resp["val"]):
            if ev.get("name") == event:
                if not quiet:
                    show(ev)
                sys.stdout.flush()
                flux.kvs.watch_cancel(h, future)
                return
            if verbose:
                show(ev)
        sys.stdout.flush()
