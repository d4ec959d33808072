"""Numeric constants of the Flux message protocol (RFC 3) and its API.

The values are flux-core's, so they can be compared with the Flux
documentation and with ``flux ping -u`` / ``flux overlay trace`` output.
"""
from __future__ import annotations

# Message types (RFC 3 PROTO "type" octet); a mask may combine them.
FLUX_MSGTYPE_REQUEST = 0x01
FLUX_MSGTYPE_RESPONSE = 0x02
FLUX_MSGTYPE_EVENT = 0x04
FLUX_MSGTYPE_CONTROL = 0x08
FLUX_MSGTYPE_ANY = 0x0F
FLUX_MSGTYPE_MASK = 0x0F

# Message flags (RFC 3 PROTO "flags" octet).
FLUX_MSGFLAG_TOPIC = 0x01
FLUX_MSGFLAG_PAYLOAD = 0x02
FLUX_MSGFLAG_NORESPONSE = 0x04
FLUX_MSGFLAG_ROUTE = 0x08
FLUX_MSGFLAG_UPSTREAM = 0x10
FLUX_MSGFLAG_PRIVATE = 0x20
FLUX_MSGFLAG_STREAMING = 0x40
FLUX_MSGFLAG_USER1 = 0x80

# Addressing (RFC 3 "Rank Assignment").
FLUX_NODEID_ANY = 0xFFFFFFFF
FLUX_NODEID_UPSTREAM = 0xFFFFFFFE
FLUX_USERID_UNKNOWN = 0xFFFFFFFF
FLUX_MATCHTAG_NONE = 0

# Roles stamped on a message at ingress.
FLUX_ROLE_NONE = 0
FLUX_ROLE_OWNER = 1
FLUX_ROLE_USER = 2
FLUX_ROLE_LOCAL = 4
FLUX_ROLE_ALL = 0xFFFFFFFF

# flux_rpc() flags.
FLUX_RPC_NORESPONSE = 1
FLUX_RPC_STREAMING = 2

# flux_open() / handle flags.
FLUX_O_TRACE = 1
FLUX_O_CLONE = 2
FLUX_O_NONBLOCK = 4
FLUX_O_MATCHDEBUG = 8
FLUX_O_TEST_NOSUB = 16

# Reactor run flags and fd watcher events.
FLUX_REACTOR_NOWAIT = 1
FLUX_REACTOR_ONCE = 2
FLUX_POLLIN = 1
FLUX_POLLOUT = 2
FLUX_POLLERR = 4

# syslog(3) severities, as used by flux_log(3) and the broker log ring.
LOG_EMERG = 0
LOG_ALERT = 1
LOG_CRIT = 2
LOG_ERR = 3
LOG_WARNING = 4
LOG_NOTICE = 5
LOG_INFO = 6
LOG_DEBUG = 7

SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

__all__ = [name for name in dir() if name.isupper()]
