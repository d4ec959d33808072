"""PMI-1 for the job shell: the simple wire protocol (wire), the per-shell
server state machine (server) and the process mapping / task map (mapping).
See specs/pmi.md."""
from shell.pmi.mapping import process_mapping
from shell.pmi.server import PmiConnection, PmiServer

__all__ = ["PmiServer", "PmiConnection", "process_mapping"]
