"""flux.cli: the layers Flux's submission commands are built on.

``flux.cli.plugin`` (CLI plugins: site options for submit/run/batch/alloc)
and ``flux.cli.argparse`` (``FluxArgumentParser``), as in Flux's bindings.
Our own ``flux`` command is click (``cli/``); ``cli/submitopts.py`` turns
the plugins' options into click options.  ``specs/jobspec.md`` ("CLI
plugins") has the rules.
"""
