"""Core broker services: ``broker`` (ping, state, shutdown), ``service``
(client-registered services), ``module`` (list/load/remove), ``config``
(get/load/reload).

As in Flux, ``service.add`` and ``service.remove`` answer with no payload,
``config.get`` answers with the config object itself, and ``config.load``
replaces the config with the request's object (specs/broker.md).
"""
from __future__ import annotations

import errno
import time
from typing import Any

from broker.config import Config, load_dir, validate
from broker.lifecycle import State
from broker.module import Module, ping_response, request_handler
from broker.svc_attr import str_field
from flux.errors import FluxError
from flux.message import Message


def _refusal(module: str, exc: BaseException) -> FluxError:
    """The error of a reload that module MODULE refused, with its own text."""
    text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or str(exc)
    text = text.removeprefix(f"{module}: ")
    return FluxError(getattr(exc, "errno", None) or errno.EINVAL,
                     f"module {module} refused the new config: {text}")


class BrokerService(Module):
    name = "broker"

    @request_handler("broker.ping", allow_guest=True)
    def ping(self, msg: Message) -> dict[str, Any]:
        return ping_response(msg, self.ctx.rank, None)

    @request_handler("broker.state", allow_guest=True)
    def state(self, msg: Message) -> dict[str, Any]:
        b = self.ctx._broker
        now = time.monotonic()
        return {
            "rank": b.rank,
            "size": b.size,
            "state": str(b.state),
            "state_duration": now - b.state_since,
            "run_duration": None if b.run_since is None else now - b.run_since,
            "starttime": b.starttime,
            "owner": b.owner,
            "instance_level": int(b.attrs.get_default("instance-level", "0") or 0),
            "online": sorted(b.online),
            "lost": sorted(b.lost),
            "torpid": sorted(getattr(b, "torpid", ())),
        }

    @request_handler("broker.shutdown")
    def shutdown(self, msg: Message) -> dict[str, Any]:
        b = self.ctx._broker
        if b.rank != 0:
            raise FluxError(errno.EINVAL, "only the rank 0 broker may be shut down")
        if b.state not in (State.JOIN, State.INIT, State.QUORUM, State.RUN):
            # Already on the way down: the request is granted by what is under way.
            return {}
        body = msg.payload if isinstance(msg.payload, dict) else {}
        options = {k: v for k, v in body.items() if k != "reason"}
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        b.request_shutdown(reason or f"flux shutdown by uid {msg.userid}", options)
        return {}


class ServiceService(Module):
    """Services offered by clients (flux_service_register)."""

    name = "service"

    def _client(self, msg: Message) -> Any:
        ep = self.ctx._broker.endpoints.get(msg.sender or "")
        if ep is None or len(msg.route) != 1 or not hasattr(ep, "transport"):
            raise FluxError(errno.EPROTO, f"{msg.topic}: only a local client may register services")
        return ep

    @request_handler("service.add")
    def add(self, msg: Message) -> None:
        name = str_field(msg, "service")
        client = self._client(msg)
        self.ctx._broker.register_service(name, client)
        client.services.add(name)
        self.ctx.respond(msg)

    @request_handler("service.remove")
    def remove(self, msg: Message) -> None:
        name = str_field(msg, "service")
        client = self._client(msg)
        self.ctx._broker.unregister_service(name, client)
        client.services.discard(name)
        self.ctx.respond(msg)


class ModuleService(Module):
    name = "module"

    @request_handler("module.list", allow_guest=True)
    def list(self, msg: Message) -> dict[str, Any]:
        return {"modules": self.ctx._broker.modules.listing()}

    @request_handler("module.load")
    async def load(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        name = str_field(msg, "name")
        args = body.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError("'args' must be a list of strings")
        entry = await self.ctx._broker.modules.load(name, None, args)
        self.ctx.log.info(f"module {entry.name} loaded")
        return {"name": entry.name}

    @request_handler("module.remove")
    async def remove(self, msg: Message) -> dict[str, Any]:
        body = msg.payload if isinstance(msg.payload, dict) else {}
        name = str_field(msg, "name")
        host = self.ctx._broker.modules
        if name not in host:
            if body.get("force"):
                return {}
            raise FluxError(errno.ENOENT, f"module '{name}' is not loaded")
        await host.remove(name)
        self.ctx.log.info(f"module {name} removed")
        return {}


class ConfigService(Module):
    name = "config"

    @request_handler("config.get", allow_guest=True)
    def get(self, msg: Message) -> Any:
        """The config object itself, as Flux answers (any payload is ignored)."""
        return self.ctx._broker.config.table

    def _install(self, new: Config, what: str) -> None:
        """Make NEW the config, unless a loaded module refuses it (then keep the old).

        Two phases, so a refusal leaves the old config in effect everywhere:
        every module that has ``config_check(config)`` is asked first (nothing
        changes yet); then each module's ``config_reload(config)`` applies it.
        A module that refuses only in ``config_reload`` makes the modules
        already given NEW get the old config back, in reverse order.
        """
        broker = self.ctx._broker
        old = broker.config
        entries = broker.modules.loaded()
        broker.config = new
        try:
            for entry in entries:
                check = getattr(entry.module, "config_check", None)
                if callable(check):
                    check(new)
        except (OSError, ValueError) as exc:
            broker.config = old
            raise _refusal(entry.name, exc) from None
        applied = []
        for entry in entries:
            try:
                entry.module.config_reload(new)
            except (OSError, ValueError) as exc:
                broker.config = old
                for done in reversed(applied):
                    try:
                        done.module.config_reload(old)
                    except (OSError, ValueError) as again:
                        self.ctx.log.error(f"config: module {done.name} cannot go back to "
                                           f"the old config: {again}")
                raise _refusal(entry.name, exc) from None
            applied.append(entry)
        self.ctx.log.info(f"config {what}")

    @request_handler("config.load")
    def load(self, msg: Message) -> None:
        """Replace the config with the request's object (Flux's ``config.load``)."""
        table = msg.payload
        if not isinstance(table, dict):
            raise FluxError(errno.EINVAL, "config.load: the config must be a JSON object")
        new = Config(table, path=self.ctx._broker.config.path)
        try:
            validate(new)
        except OSError as exc:
            raise FluxError(errno.EINVAL, f"config.load: {exc.strerror or exc}") from None
        self._install(new, "loaded from a config.load request")
        self.ctx.respond(msg)

    @request_handler("config.reload")
    def reload(self, msg: Message) -> dict[str, Any]:
        path = self.ctx._broker.config.path
        new = load_dir(path) if path else Config()
        self._install(new, f"reloaded from {path or '(no config path)'}")
        return {}


__all__ = ["BrokerService", "ServiceService", "ModuleService", "ConfigService"]
