"""The job shell (one per job per rank). Real task execution comes in a later issue;
until then the instance runs jobs in test mode (see jobmgr.exec)."""
