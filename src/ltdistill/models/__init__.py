"""Model registry: `ltdistill.models.create(name, channels=..., num_classes=..., im_size=..., **options)`."""

from ltdistill.models import convnet, resnet, small  # noqa: F401  (registers the models)
from ltdistill.models.registry import (
                                       Classifier,
                                       convnet_stem,
                                       create,
                                       has_batchnorm,
                                       identity,
                                       names,
                                       option_defaults,
                                       options_for,
                                       recorded_options,
                                       register,
                                       resolved_options,
)

__all__ = ["Classifier", "convnet_stem", "create", "has_batchnorm", "identity", "names", "option_defaults",
           "options_for", "recorded_options", "register", "resolved_options"]
