"""The job manager, one file per concern (see jobmgr/manager/module.py)."""
