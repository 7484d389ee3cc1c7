"""Distillation methods, one file each, all following engine/method.py's protocol."""

from ltdistill.engine.method import Distiller, Method
from ltdistill.methods.registry import METHODS, create, names, soft_label_methods

__all__ = ["Distiller", "Method", "METHODS", "create", "names", "soft_label_methods"]
