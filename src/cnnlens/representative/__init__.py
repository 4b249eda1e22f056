"""Representative Interpretations (RI paper; SPEC §5).

:class:`RepresentativeInterpreter` samples linear boundaries of the head G (Eq. 2) from a
reference set, finds for an input the decision region P(x) shared by many reference images
(greedy Algorithm 1), visualises it as a reusable heatmap, ranks the covered images (Eq. 6), and
evaluates how well interpretations are reused on unseen images (RI Table 1). ``explain(...,
method="ri", reference=images)`` gives the heatmap through the common attribution call.
"""
from __future__ import annotations

from typing import Any

import torch

from ..attribution import register
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
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
]


@register("ri", uses_layer=True, stochastic=True,
          description="Representative Interpretation heatmap: decision region shared by many references (SPEC §5)")
def _ri_method(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
               reference: torch.Tensor | RepresentativeInterpreter | None = None, n_boundaries: int = 50,
               unit_normals: bool = False) -> Explanation:
    """RI heatmap (SPEC §5) of the predicted class; ``reference`` = the reference images R
    ``(N, C, H, W)`` (required) or a prepared :class:`RepresentativeInterpreter`."""
    if reference is None:
        raise CnnlensError("method 'ri' needs reference=<(N, C, H, W) reference images> or a RepresentativeInterpreter")
    if isinstance(reference, RepresentativeInterpreter):
        ri = reference
        if ri.clf is not clf:
            raise CnnlensError("reference is a RepresentativeInterpreter of another Classifier")
    else:
        ri = RepresentativeInterpreter(clf, reference, n_boundaries=n_boundaries, seed=seed, layer=layer,
                                       batch_size=batch_size, unit_normals=unit_normals)
    it = ri.interpret(x, k=0)
    if not torch.equal(it.targets.to(targets.device), targets):
        raise CnnlensError(
            "method 'ri' explains the predicted class (its decision region); pass target=None "
            f"(got targets {targets.tolist()}, predicted {it.targets.tolist()})"
        )
    assert it.maps is not None
    return Explanation(
        maps=it.maps,
        targets=it.targets,
        method="ri",
        params={"n_boundaries": ri.n_boundaries, "unit_normals": ri.unit_normals,
                "n_reference": int(ri.features_.shape[0]), "boundary_seed": ri.seed},
        info={"counts": it.counts, "boundaries": [p.tolist() for p in it.boundaries],
              "covered_top10": [c[:10].tolist() for c in it.covered],
              "n_distinct_boundaries": ri.n_distinct_boundaries},
    )
