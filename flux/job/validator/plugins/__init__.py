"""The validator plugins shipped with flux (one module per plugin; a site adds its own
through ``--plugin-path`` or ``[ingest.validator] pluginpath``)."""
