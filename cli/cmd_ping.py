"""flux ping: round-trip latency to a service's ``ping`` method (flux-ping(1)).

Output, one line per response::

    [RANK!]TOPIC pad=N[ userid=U rolemask=0xR] seq=S time=T ms (ROUTE)
"""
from __future__ import annotations

import time

import click

from cli.common import die, handle_errors


def parse_target(target: str, rank: str | None) -> tuple[str, str]:
    """(rank text, service) from TARGET and --rank: ``4!kvs``, ``1`` (broker), ``kvs``."""
    if rank is None:
        if "!" in target:
            rank, _sep, target = target.partition("!")
        elif target.isdigit() or target in ("any", "upstream"):
            rank, target = target, "broker"
        else:
            rank = "any"
    if not target:
        raise click.UsageError("no service named in target")
    return rank, target


def nodeid_of(rank: str) -> int:
    from flux.constants import FLUX_NODEID_ANY, FLUX_NODEID_UPSTREAM

    if rank == "any":
        return FLUX_NODEID_ANY
    if rank == "upstream":
        return FLUX_NODEID_UPSTREAM
    # ranks are 32-bit nodeids on the wire; the top ones mean ANY and UPSTREAM
    if rank.isdigit() and int(rank) < FLUX_NODEID_UPSTREAM:
        return int(rank)
    raise click.BadParameter(f"'{rank}' is not a rank, any or upstream", param_hint="'--rank'")


@click.command("ping", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-r", "--rank", default=None, metavar="N", help="Target rank, any or upstream")
@click.option("-p", "--pad", type=click.IntRange(min=0), default=0, metavar="N",
              help="Pad the payload with N bytes")
@click.option("-i", "--interval", type=click.FloatRange(min=0), default=1.0, metavar="N",
              help="Seconds between requests (default 1.0)")
@click.option("-c", "--count", type=click.IntRange(min=0), default=0, metavar="N",
              help="Stop after N responses (default: unlimited)")
@click.option("-b", "--batch", is_flag=True, help="Read responses after sending all requests")
@click.option("-u", "--userid", is_flag=True, help="Show userid and rolemask")
@click.argument("target")
@handle_errors("ping")
def command(rank: str | None, pad: int, interval: float, count: int, batch: bool,
            userid: bool, target: str) -> None:
    """Ping TARGET: a service, RANK!service, or a bare rank (its broker)."""
    if batch and count == 0:
        raise click.UsageError("--batch should only be used with --count")
    import flux

    rank_text, service = parse_target(target, rank)
    nodeid = nodeid_of(rank_text)
    topic = f"{service}.ping"
    prefix = "" if rank_text == "any" else f"{rank_text}!"
    padding = "p" * pad
    h = flux.Flux()
    state = {"sent": 0, "received": 0}

    def show(seq: int, t0: float, rpc: object) -> None:
        try:
            resp = rpc.get()  # type: ignore[attr-defined]
        except OSError as exc:
            die("ping", f"{rank_text}!{topic}: {exc.strerror or exc}")
        ms = (time.monotonic() - t0) * 1000.0
        if resp.get("pad") != padding:
            die("ping", "error in ping pad")
        who = f" userid={resp['userid']} rolemask=0x{resp['rolemask']:x}" if userid else ""
        click.echo(f"{prefix}{topic} pad={pad}{who} seq={seq} time={ms:.3f} ms "
                   f"({resp.get('route', '')})")
        state["received"] += 1

    def send() -> object:
        seq = state["sent"]
        state["sent"] += 1
        t0 = time.monotonic()
        rpc = h.rpc(topic, {"seq": seq, "pad": padding}, nodeid)
        return seq, t0, rpc

    try:
        if batch:
            pending = []
            for i in range(count):
                pending.append(send())
                if interval and i < count - 1:
                    time.sleep(interval)
            for seq, t0, rpc in pending:
                show(seq, t0, rpc)
            return
        while count == 0 or state["sent"] < count:
            seq, t0, rpc = send()
            show(seq, t0, rpc)
            if interval and (count == 0 or state["sent"] < count):
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
