"""Jobs as event-sourced projections: ingest, job manager, scheduler, job list."""
