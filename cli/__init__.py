"""The ``flux`` command: a click application whose subcommands load lazily."""
