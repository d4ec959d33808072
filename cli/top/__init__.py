"""``flux top``: the pure view model (``view``), the data source (``source``) and the
terminal application (``app``).  The command itself is ``cli/cmd_top.py``."""
