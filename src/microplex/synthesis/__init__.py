"""Conditional synthesis: variable specs, transforms, the point-mass flow and the Synthesizer."""

from .flow import TriangularFlow
from .model import PointMassFlow
from .schema import VariableSpec, infer_kind
from .synthesizer import Synthesizer

__all__ = ["PointMassFlow", "Synthesizer", "TriangularFlow", "VariableSpec", "infer_kind"]
