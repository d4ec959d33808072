"""The broker process: routing, services, connectors, overlay, lifecycle."""
