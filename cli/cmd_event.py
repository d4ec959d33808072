"""flux event: publish and subscribe to events (flux-event(1))."""
from __future__ import annotations

import sys

import click

from cli.common import die, handle_errors


@click.group("event", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Publish and subscribe to Flux events."""


@command.command("pub")
@click.option("-r", "--raw", is_flag=True, help="Payload is raw text, not JSON")
@click.option("-l", "--loopback", is_flag=True, help="Wait until the event comes back")
@click.option("-s", "--synchronous", is_flag=True,
              help="Wait for the sequence number (always done: publishing is an RPC)")
@click.option("-p", "--private", is_flag=True, help="Only the owner and sender see it")
@click.argument("topic")
@click.argument("payload", nargs=-1)
@handle_errors("event")
def pub(raw: bool, loopback: bool, synchronous: bool, private: bool, topic: str,
        payload: tuple[str, ...]) -> None:
    """Publish an event TOPIC with an optional PAYLOAD (JSON unless -r)."""
    import flux
    import orjson
    from flux.constants import FLUX_MSGFLAG_PRIVATE

    body: object = None
    if payload:
        text = " ".join(payload)
        if raw:
            body = text
        else:
            try:
                body = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                die("event", f"payload is not valid JSON: {exc}")
    h = flux.Flux()
    if loopback:
        h.event_subscribe(topic)
    flags = FLUX_MSGFLAG_PRIVATE if private else 0
    seq = h.event_publish(topic, body, flags).get()["seq"]
    if loopback:
        while True:
            msg = h.event_recv()
            if msg is not None and msg.topic == topic and msg.seq == seq:
                break


@command.command("sub")
@click.option("-c", "--count", type=click.IntRange(min=0), default=0, metavar="N",
              help="Exit after N events")
@click.argument("topics", nargs=-1)
@handle_errors("event")
def sub(count: int, topics: tuple[str, ...]) -> None:
    """Print events matching TOPICS (prefixes; none: all events)."""
    import signal

    import flux

    h = flux.Flux()
    for topic in topics or ("",):
        h.event_subscribe(topic)
    seen = 0
    # ctrl-C ends the command at once, as it ends flux-core's: a KeyboardInterrupt
    # raised where the handle's code cannot pass it on (a callback, a finalizer)
    # would leave us waiting for the next event.  (Left alone when ignored, as
    # in a background job of a script.)
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        while count == 0 or seen < count:
            msg = h.event_recv()
            if msg is None:
                continue
            text = msg.payload_str
            click.echo(msg.topic if text is None else f"{msg.topic}\t{text}")
            sys.stdout.flush()
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
