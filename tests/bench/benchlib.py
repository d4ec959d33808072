"""The command line every part-based benchmark shares: sizes, parts, the table.

``run_parts`` parses ``--quick`` / ``--tiny`` / ``--only`` (plus what
``add_arguments`` adds), builds the context with ``make_ctx(sizes, args)``,
runs the chosen parts in definition order, closes the context even on
failure or SIGTERM, and prints the table of ``ctx.rows`` on stderr.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Callable

__all__ = ["run_parts"]


def run_parts(doc: str | None, parts: dict[str, Callable[[Any], None]],
              sizes: dict[str, dict[str, Any]], make_ctx: Callable[[dict[str, Any], Any], Any],
              argv: list[str] | None = None,
              add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
              label_width: int = 18) -> int:
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    g.add_argument("--tiny", action="store_true", help="minimal sizes (smoke test)")
    ap.add_argument("--only", default=",".join(parts),
                    help=f"comma-separated parts to run (default: all): {','.join(parts)}")
    if add_arguments is not None:
        add_arguments(ap)
    args = ap.parse_args(argv)
    chosen = sizes["tiny" if args.tiny else "quick" if args.quick else "full"]
    names = args.only.split(",")
    for name in names:
        if name not in parts:
            ap.error(f"unknown part '{name}' (choose from {', '.join(parts)})")
    # a SIGTERM (e.g. from timeout(1)) still stops the instances started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    ctx = make_ctx(chosen, args)
    try:
        for name in parts:   # in definition order
            if name in names:
                parts[name](ctx)
    finally:
        ctx.close()
    w = label_width
    print(f"{'metric':30} {'params':>{w}} {'value':>12}  unit", file=sys.stderr)
    for metric, value, unit, label in ctx.rows:
        print(f"{metric:30} {label:>{w}} {value:12.2f}  {unit}", file=sys.stderr)
    return 0
