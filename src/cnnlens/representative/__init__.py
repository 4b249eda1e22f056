"""Representative Interpretations (RI paper; docs/algorithms.md §5).

:class:`RepresentativeInterpreter` samples linear boundaries of the head G (Eq. 2) from a
reference set, finds for an input the decision region P(x) shared by many reference images
(greedy Algorithm 1), visualises it as a reusable heatmap, ranks the covered images (Eq. 6), and
evaluates how well interpretations are reused on unseen images (RI Table 1). ``explain(...,
method="ri", reference=images)`` gives the heatmap through the common attribution call
(``cnnlens/attribution/ri.py``). :class:`ACE` (Automatic Concept-based Explanations, the RI
paper's fifth baseline) discovers a class's concepts and reuses them (:func:`ace_reuse`);
``explain(..., method="ace", reference=images)`` is its common call (``cnnlens/attribution/ace.py``).
"""
from __future__ import annotations

from .ace import ACE, AceAssignment, AceReuse, ace_reuse
from .core import Interpretation, RepresentativeInterpreter
from .evaluation import ReuseTable, evaluate_reuse, precision_at_k
from .greedy import GreedyResult, greedy_cover

__all__ = [
    "RepresentativeInterpreter",
    "Interpretation",
    "ReuseTable",
    "evaluate_reuse",
    "precision_at_k",
    "greedy_cover",
    "GreedyResult",
    "ACE",
    "AceAssignment",
    "AceReuse",
    "ace_reuse",
]
