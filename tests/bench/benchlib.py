"""What every part-based benchmark shares: its parts, sizes, command line and table.

``PARTS = Parts()`` with ``@PARTS.add("name")`` registers a part;
``byte_compile()`` writes the project's bytecode caches first, so a run
measures the code rather than the compiler.

``run_parts`` parses ``--quick`` / ``--tiny`` / ``--only`` (plus what
``add_arguments`` adds), builds the context with ``make_ctx(sizes, args)``,
runs the chosen parts in definition order, closes the context even on
failure or SIGTERM, and prints the table of ``ctx.rows`` on stderr.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any, Callable

__all__ = ["run_parts", "Parts", "byte_compile"]


class Parts(dict):  # type: ignore[type-arg]
    """A benchmark's parts by name, in definition order."""

    def add(self, name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
        """Decorator: register the function as part NAME."""
        def deco(fn: Callable[[Any], None]) -> Callable[[Any], None]:
            self[name] = fn
            return fn
        return deco


def byte_compile() -> None:
    """Write the bytecode caches of the project's packages, as an installation has them.

    With PYTHONDONTWRITEBYTECODE set (as in some development shells) and a
    checkout whose files changed since their caches were written, every
    Python start would compile those modules again: a start-up or restart
    would then measure the compiler (0.1-0.3 s) rather than the code.
    """
    import compileall

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for pkg in ("broker", "cli", "eventstore", "flux", "jobmgr", "kvs", "shell"):
        compileall.compile_dir(os.path.join(root, pkg), quiet=2)


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
