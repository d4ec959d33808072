"""The package installs and its console script answers --version and --help."""
from __future__ import annotations

import subprocess
import sys

import flux


def run_flux(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args],
                          capture_output=True, text=True, timeout=60)


def test_version_option_prints_package_version() -> None:
    proc = run_flux("--version")
    assert proc.returncode == 0
    assert flux.__version__ in proc.stdout
    # flux(1): -V runs flux version
    assert run_flux("-V").stdout == proc.stdout == run_flux("version").stdout


def test_help_lists_usage() -> None:
    proc = run_flux("--help")
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout


def test_unknown_command_is_usage_error() -> None:
    proc = run_flux("no-such-command")
    assert proc.returncode == 2
    assert "no-such-command" in proc.stderr


def test_import_flux_is_light() -> None:
    # The CLI must start fast: importing flux must not pull in zmq, lmdb or yaml.
    code = ("import sys, flux, flux.job, flux.util; "
            "bad = [m for m in ('zmq', 'lmdb', 'yaml', 'structlog') if m in sys.modules]; "
            "print(','.join(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
