"""Neuro-symbolic rule extraction (docs/algorithms.md §6)."""
from .binarize import filter_norms, p_matrix, thresholds
from .fold import FoldSEM, information_gain, predicate_name
from .losses import EBPLoss, SparsityLoss, ebp_matrix
from .model import NeSyModel
from .program import Justification, Literal, Rule, RuleParseError, RuleSet
from .train import TrainResult, train

__all__ = [
    "EBPLoss",
    "NeSyModel",
    "SparsityLoss",
    "TrainResult",
    "ebp_matrix",
    "filter_norms",
    "p_matrix",
    "thresholds",
    "train",
    "FoldSEM",
    "Justification",
    "Literal",
    "Rule",
    "RuleParseError",
    "RuleSet",
    "information_gain",
    "predicate_name",
]
