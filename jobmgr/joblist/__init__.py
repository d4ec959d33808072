"""The ``job-list`` service: the projection behind ``flux jobs`` and its queries."""
