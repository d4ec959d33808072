"""The services built into every broker, loaded before rc1 and unloaded last."""
from __future__ import annotations

from broker.svc_attr import AttrService
from broker.svc_broker import BrokerService, ConfigService, ModuleService, ServiceService
from broker.svc_event import EventService
from broker.svc_log import LogService
from broker.svc_overlay import OverlayService
from broker.svc_rexec import RexecService

# rexec is last so that it unloads first: its processes are killed while the
# other services are still there to carry their final responses.
BUILTINS = (BrokerService, AttrService, LogService, EventService, ServiceService,
            ModuleService, ConfigService, OverlayService, RexecService)

__all__ = ["BUILTINS"]
