"""The cron service (flux-cron(1))."""
