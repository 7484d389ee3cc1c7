"""Distillation methods, one file each, all following methods/base.py's protocol."""

from ltdistill.methods.base import Distiller, Method
from ltdistill.methods.registry import METHODS, create, names

__all__ = ["Distiller", "Method", "METHODS", "create", "names"]
