"""Loading and unloading broker modules (rc1, rc3, ``flux module load/remove``)."""
from __future__ import annotations

import errno
import gc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.module import Module, ModuleContext, module_digest, resolve_target
from broker.rc import RC1, known_target
from flux.constants import FLUX_ROLE_LOCAL, FLUX_ROLE_OWNER
from flux.errors import FluxError

if TYPE_CHECKING:
    from broker.broker import Broker


@dataclass(slots=True)
class Loaded:
    name: str
    target: str
    ctx: ModuleContext
    module: Module
    size: int
    digest: str
    builtin: bool


class ModuleHost:
    """The modules of one broker, in load order."""

    def __init__(self, broker: "Broker") -> None:
        self._broker = broker
        self._loaded: list[Loaded] = []

    def __contains__(self, name: object) -> bool:
        return any(m.name == name for m in self._loaded)

    def get(self, name: str) -> Loaded:
        for m in self._loaded:
            if m.name == name:
                return m
        raise FluxError(errno.ENOENT, f"module '{name}' is not loaded")

    def loaded(self) -> list[Loaded]:
        return list(self._loaded)

    async def load(self, name: str | None, target: str | None = None, args: list[str] | None = None,
                   *, builtin: bool = False, cls: type[Module] | None = None) -> Loaded:
        """Load a module by NAME (known to broker.rc) or TARGET ``pkg.mod:Class``."""
        broker = self._broker
        if cls is None:
            if target is None:
                if name is None:
                    raise FluxError(errno.EINVAL, "module load: no name or target given")
                target = known_target(name, broker.rank) or (name if ":" in name else None)
                if target is None:
                    raise FluxError(errno.ENOENT, f"module '{name}' not found (not in broker.rc "
                                                  "and not package.module:Class)")
            cls = resolve_target(target)
        else:
            target = f"{cls.__module__}:{cls.__qualname__}"
        modname = name if name and ":" not in name else (cls.name or cls.__name__.lower())
        if modname in self:
            raise FluxError(errno.EEXIST, f"module '{modname}' is already loaded")
        for svc in cls.service_names():
            if svc in broker.services:
                raise FluxError(errno.EEXIST, f"module '{modname}': service '{svc}' "
                                              "is already registered")
        ctx = ModuleContext(broker, modname)
        module = cls(ctx, list(args or []))
        ctx._bind(module)
        broker.add_endpoint(ctx)
        t0 = time.monotonic()
        try:
            await module.start()
        except BaseException:
            broker.remove_endpoint(ctx)
            await ctx._shutdown()
            broker.attrs.remove_owned(modname)
            raise
        for svc in ctx.services:
            broker.register_service(svc, ctx)
        size, digest = module_digest(cls)
        entry = Loaded(modname, target, ctx, module, size, digest, builtin)
        self._loaded.append(entry)
        if not builtin:
            broker.log.debug(f"module {modname} loaded in {time.monotonic() - t0:.6g}s")
        return entry

    async def remove(self, name: str) -> None:
        """Unload module NAME: unregister its services, stop it, drop its state."""
        entry = self.get(name)
        if entry.builtin:
            raise FluxError(errno.EPERM, f"module '{name}' is built into the broker")
        await self._unload(entry)

    async def _unload(self, entry: Loaded) -> None:
        broker = self._broker
        self._loaded.remove(entry)
        for svc in entry.ctx.services:
            broker.unregister_service(svc, entry.ctx)
        t0 = time.monotonic()
        try:
            await entry.module.stop()
        except Exception:  # noqa: BLE001 - keep unloading the rest
            broker.log.exception(f"module {entry.name} failed to stop cleanly")
            ok = False
        else:
            ok = True
        await entry.ctx._shutdown()
        broker.events.drop(entry.ctx)
        broker.remove_endpoint(entry.ctx)
        # as for a client that goes away: the services it used forget it (its
        # streams, its role: a reloaded scheduler's hello is not a second one)
        broker.send_disconnects(entry.ctx.uuid, entry.ctx.used, entry.ctx.owner,
                                FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL)
        broker.attrs.remove_owned(entry.name)
        if not entry.builtin:
            broker.log.debug(f"module {entry.name} unloaded in {time.monotonic() - t0:.3g}s")
        if not ok:
            raise FluxError(errno.EIO, f"module {entry.name} failed to stop cleanly")

    async def load_rc1(self) -> None:
        """Load the rc1 modules for this rank, in order; the first failure raises
        (in recovery mode it is logged, and the others load).

        The cyclic collector is off meanwhile: a restart builds hundreds of
        thousands of long-lived objects (job records, the job list), which
        set off repeated full collections over an ever larger heap (about a
        third of a restart's time at 100,000 jobs) that free nothing.  The
        broker collects once and freezes what is alive when rc1 is done.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        recovery = self._broker.recovery
        try:
            for item in RC1:
                if item.loads_on(self._broker.rank):
                    if not recovery:
                        await self.load(item.name, item.target)
                        continue
                    try:
                        await self.load(item.name, item.target)
                    except Exception as exc:  # noqa: BLE001 - recovery goes on without it
                        self._broker.log.error(f"rc1: {item.name}: {exc}; recovery mode goes "
                                               "on without it")
        finally:
            if was_enabled:
                gc.enable()

    async def unload_all(self) -> bool:
        """rc3: unload every non-builtin module in reverse order; False if any failed."""
        ok = True
        for entry in reversed([m for m in self._loaded if not m.builtin]):
            try:
                await self._unload(entry)
            except FluxError:
                ok = False
        return ok

    async def unload_builtins(self) -> None:
        for entry in reversed([m for m in self._loaded if m.builtin]):
            try:
                await self._unload(entry)
            except FluxError:
                pass

    def listing(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        for m in self._loaded:
            out.append({"name": m.name, "size": m.size, "digest": m.digest,
                        "idle": int(now - m.ctx.last_active), "services": list(m.ctx.services),
                        "builtin": m.builtin, "target": m.target})
        return out


__all__ = ["ModuleHost", "Loaded"]
