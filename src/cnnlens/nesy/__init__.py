"""Neuro-symbolic rule extraction (SPEC §6)."""
from .fold import FoldSEM, information_gain, predicate_name
from .program import Justification, Literal, Rule, RuleParseError, RuleSet

__all__ = [
    "FoldSEM",
    "Justification",
    "Literal",
    "Rule",
    "RuleParseError",
    "RuleSet",
    "information_gain",
    "predicate_name",
]
