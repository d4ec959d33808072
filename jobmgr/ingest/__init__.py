"""The ``job-ingest`` service: validate and batch job submissions."""
