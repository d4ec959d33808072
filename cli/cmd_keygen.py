"""flux keygen: write the CURVE certificate of a system instance's overlay (flux-keygen(1)).

``flux keygen [-n NAME] PATH`` writes a new certificate (ZeroMQ zcert text,
mode 0600) to PATH, refusing to replace an existing file.  Every broker of
the instance uses the same certificate: ``[bootstrap] curve_cert`` names it
(broker/cert.py, broker/boot_config.py).
"""
from __future__ import annotations

import click

from cli.common import die


@click.command("keygen", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--name", metavar="NAME", help="The certificate's name metadata "
                                                   "(default: this host's name)")
@click.argument("path", required=False)
def command(name: str | None, path: str | None) -> None:
    """Generate the overlay network's CURVE certificate into PATH."""
    from broker.cert import write_cert
    from flux.errors import FluxError

    if not path:
        raise click.UsageError("PATH is required (where to write the certificate)")
    try:
        write_cert(path, name)
    except FluxError as exc:
        die("keygen", exc.strerror or str(exc))
