"""Job validation plugins (flux.job.validator, flux-job-validator): ``JobValidator``
runs the ``ValidatorPlugin``s named by ``--plugins`` over ``ValidatorJobInfo``s."""
from flux.job.validator.validator import (
    JobValidator,
    ValidatorJobInfo,
    ValidatorPlugin,
    ValidatorResult,
    import_path,
    import_plugins,
    import_plugins_pkg,
)

__all__ = ["JobValidator", "ValidatorJobInfo", "ValidatorPlugin", "ValidatorResult",
           "import_path", "import_plugins", "import_plugins_pkg"]
