"""Hierarchical synthesis: households from a flow, then their persons member by member."""

from ._synthesizer import HouseholdSynthesizer

__all__ = ["HouseholdSynthesizer"]
