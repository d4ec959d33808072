"""URI resolver plugins of ``flux.uri.FluxURIResolver``, one module per scheme.

Other distributions may add modules to this package (its path is extended
over ``sys.path`` as a pkgutil-style namespace).
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
