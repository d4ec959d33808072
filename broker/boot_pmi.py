"""``flux start`` as the tasks of a job: one broker per task, bootstrapped over PMI-1.

When ``flux start`` finds ``PMI_FD`` in its environment (and no
``--test-size``), it runs ONE broker whose rank and size are the task's
PMI rank and size.  Every broker makes its own CURVE keypair; a broker
with children binds its overlay socket first.  Then each broker puts its
*business card* under ``flux.overlay.<rank>``, JSON
``{"hostname", "pubkey", "uri"}`` (``uri`` empty for a leaf), and all
enter one barrier.  Afterwards each reads its parent's card (where to
connect, which server key to expect) and its children's (which keys the
ZAP handler admits), and finalizes PMI.  The tree shape is
broker.topology's.  Only rank 0 runs the initial program.

Attributes from PMI: ``hostlist`` is every rank's hostname from the
business cards, in rank order (each broker reads all of them, as flux-core
does); ``instance-level`` is one more than the PMI key
``flux.instance-level`` when the process manager sets it (a ``-S`` value
wins).  The PMI variables are removed from the environment so that the
programs this broker starts do not talk to its PMI descriptor.
"""
from __future__ import annotations

import asyncio
import errno
import socket
import sys
import threading
from typing import TYPE_CHECKING, Callable, TypeVar

import orjson
import zmq
import zmq.utils.z85

from broker.broker import Broker, BrokerOptions
from broker.pmi_client import PmiClient, PmiError, clean_environ
from flux.errors import FluxError

if TYPE_CHECKING:
    from broker.attrs import AttrTable
    from broker.launch import LaunchOptions

T = TypeVar("T")


def card_key(rank: int) -> str:
    """The PMI key under which broker RANK publishes its business card."""
    return f"flux.overlay.{rank}"


def _card(text: str, rank: int) -> dict[str, str]:
    try:
        card = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FluxError(errno.EPROTO, f"business card of rank {rank} is not JSON: {exc}") from None
    if not isinstance(card, dict) or not all(isinstance(card.get(k), str)
                                             for k in ("hostname", "pubkey", "uri")):
        raise FluxError(errno.EPROTO, f"business card of rank {rank} lacks hostname, pubkey "
                                      f"or uri: {text}")
    try:
        if len(zmq.utils.z85.decode(card["pubkey"].encode())) != 32:
            raise ValueError
    except ValueError:
        raise FluxError(errno.EPROTO, f"business card of rank {rank} has a bad pubkey") from None
    return card


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking FN off the loop; a daemon thread, so a hung PMI never blocks exit."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_exception(error))
        else:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(result))

    threading.Thread(target=work, name="pmi-boot", daemon=True).start()
    return await fut


class PmiBoot:
    """The overlay's bootstrap (broker.overlay.OverlayBoot) over a PMI client."""

    refusal = "whose key is none of its children's"

    def __init__(self, client: PmiClient, hostname: str, attrs: AttrTable | None = None) -> None:
        self.client = client
        self.hostname = hostname
        #: where the ``hostlist`` attribute goes once the cards are read
        self.attrs = attrs
        self.hosts: list[str] = []
        self.public, self.secret = zmq.curve_keypair()
        self._parent: tuple[str, bytes] | None = None
        self._child_keys: set[bytes] = set()

    def _exchange(self, rank: int, endpoint: str | None, parent: int | None,
                  children: list[int]) -> None:
        card = {"hostname": self.hostname, "pubkey": self.public.decode(), "uri": endpoint or ""}
        try:
            self.client.put(card_key(rank), orjson.dumps(card).decode())
            self.client.barrier()
            cards = {rank: card}

            def fetch(r: int) -> dict[str, str]:
                if r not in cards:
                    cards[r] = _card(self.client.get(card_key(r)), r)
                return cards[r]

            if parent is not None:
                pcard = fetch(parent)
                if not pcard["uri"]:
                    raise FluxError(errno.EPROTO, f"parent rank {parent} published no endpoint")
                self._parent = (pcard["uri"], pcard["pubkey"].encode())
            for child in children:
                self._child_keys.add(zmq.utils.z85.decode(fetch(child)["pubkey"].encode()))
            if self.attrs is not None:
                # every rank's card, for the hostlist attribute
                self.hosts = [fetch(r)["hostname"] for r in range(self.client.size)]
            self.client.finalize()
        except PmiError as exc:
            raise FluxError(errno.EPROTO, f"PMI bootstrap failed: {exc}") from None
        finally:
            self.client.close()

    async def publish(self, rank: int, endpoint: str | None, parent: int | None,
                      children: list[int]) -> None:
        await _in_thread(lambda: self._exchange(rank, endpoint, parent, children))
        if self.attrs is not None and self.hosts:
            from flux.hostlist import Hostlist

            self.attrs.add("hostlist", Hostlist(self.hosts).encode(), immutable=True)

    async def parent(self, rank: int, parent: int) -> tuple[str, bytes]:
        if self._parent is None:
            raise FluxError(errno.EPROTO, f"rank {rank}: parent rank {parent} is unknown "
                                          "(PMI exchange not done)")
        return self._parent

    def child_key_ok(self, key: bytes) -> bool:
        return key in self._child_keys


def instance_level(value: str | None) -> int | None:
    """Our instance-level from the PMI key flux.instance-level (None if absent or bad)."""
    if value is None:
        return None
    try:
        level = int(value)
    except ValueError:
        return None
    return level + 1 if level >= 0 else None


def launch_pmi(opts: LaunchOptions) -> int:
    """Run this task's broker of a PMI-bootstrapped instance; returns its exit code.

    ``--rundir``/``--test-rundir`` belong to ``--test-size`` (cli/cmd_start.py
    refuses them here): each broker makes and removes its own rundir.
    """
    from broker.launch import _flux_path_env

    try:
        client = PmiClient.from_environ()
    except PmiError as exc:
        raise FluxError(errno.EINVAL, f"PMI: {exc}") from None
    finally:
        clean_environ()
    try:
        client.init()
        client.get_kvsname()
        rank, size = client.rank, client.size
        level = instance_level(client.get_optional("flux.instance-level"))
        if size == 1:
            client.finalize()
    except PmiError as exc:
        client.close()
        raise FluxError(errno.EPROTO, f"PMI: {exc}") from None
    setattrs = list(opts.setattrs)
    names = {name for name, _v in setattrs}
    if level is not None and "instance-level" not in names:
        setattrs.append(("instance-level", str(level)))
    if opts.verbose:
        print(f"flux-start: broker rank {rank} of {size} (PMI bootstrap)", file=sys.stderr)
    _flux_path_env()
    broker = Broker(BrokerOptions(rank=rank, size=size, setattrs=setattrs, config=opts.config,
                                  initial_program=list(opts.initial_program),
                                  verbose=opts.verbose))
    if size > 1:
        # read by broker.overlay.Overlay in place of the --boot-dir files
        broker.overlay_boot = PmiBoot(  # type: ignore[attr-defined]
            client, socket.gethostname(), broker.attrs)
    try:
        return asyncio.run(broker.run())
    finally:
        client.close()


__all__ = ["PmiBoot", "card_key", "instance_level", "launch_pmi"]
