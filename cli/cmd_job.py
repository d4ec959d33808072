"""flux job: job housekeeping subcommands (flux-job(1)).

Each subcommand lives in a ``cli/job_*.py`` module that is imported only
when the subcommand runs, so ``flux job id`` does not pay for the
eventlog or attach machinery.  Errors print ``flux-job: MESSAGE``; exit
codes are 0 ok, 1 refused/failed, 2 usage.
"""
from __future__ import annotations

import importlib

import click

# subcommand -> (module, click command attribute)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "attach": ("cli.job_attach", "command"),
    "cancel": ("cli.job_raise", "cancel"),
    "cancelall": ("cli.job_raise", "cancelall"),
    "eventlog": ("cli.job_eventlog", "eventlog"),
    "hostpids": ("cli.job_hostpids", "command"),
    "id": ("cli.job_id", "command"),
    "info": ("cli.job_info", "command"),
    "kill": ("cli.job_raise", "kill"),
    "killall": ("cli.job_raise", "killall"),
    "last": ("cli.job_last", "command"),
    "memo": ("cli.job_memo", "command"),
    "purge": ("cli.job_purge", "command"),
    "raise": ("cli.job_raise", "raise_"),
    "raiseall": ("cli.job_raise", "raiseall"),
    "status": ("cli.job_status", "command"),
    "submit": ("cli.job_submitfile", "command"),
    "taskmap": ("cli.job_taskmap", "command"),
    "timeleft": ("cli.job_timeleft", "command"),
    "urgency": ("cli.job_urgency", "command"),
    "wait": ("cli.job_wait", "command"),
    "wait-event": ("cli.job_eventlog", "wait_event"),
}


class _LazyJobGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        return getattr(module, target[1])


@click.group("job", cls=_LazyJobGroup, context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Job housekeeping: ids, eventlogs, info, cancel/kill/raise, urgency, purge, attach,
    status, last, timeleft, taskmap, hostpids."""
