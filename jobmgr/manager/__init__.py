"""The job manager, one file per concern (see jobmgr/manager_module.py)."""
