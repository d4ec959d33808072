"""flux.core: the client handle (``Flux``), its reactor and watchers."""
