"""Model registry: `ltdistill.models.create(name, channels=..., num_classes=..., im_size=..., **options)`."""

from ltdistill.models import convnet, resnet, small  # noqa: F401  (registers the models)
from ltdistill.models.registry import Classifier, create, names, register

__all__ = ["Classifier", "create", "names", "register"]
