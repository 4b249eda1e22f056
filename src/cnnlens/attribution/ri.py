"""Representative Interpretations as the attribution method ``ri`` (docs/algorithms.md §5): the reusable heatmap
of the decision region shared by many reference images, through the common ``explain`` call."""
from __future__ import annotations

from typing import Any

import torch

from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from ..representative import RepresentativeInterpreter
from . import register

__all__ = ["ri"]


@register("ri", uses_layer=True, stochastic=True,
          description="Representative Interpretation heatmap: decision region shared by many references (§5)")
def ri(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
               reference: torch.Tensor | RepresentativeInterpreter | None = None, n_boundaries: int = 50,
               unit_normals: bool = False) -> Explanation:
    """RI heatmap (§5) of the predicted class; ``reference`` = the reference images R
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
        params={"reference": ("RepresentativeInterpreter" if isinstance(reference, RepresentativeInterpreter)
                              else f"images {tuple(reference.shape)}"),
                "layer": ri.layer_name, "n_boundaries": ri.n_boundaries, "unit_normals": ri.unit_normals,
                "n_reference": int(ri.features_.shape[0]), "boundary_seed": ri.seed,
                "compute_dtype": str(ri.compute_dtype).replace("torch.", "")},
        info={"counts": it.counts, "boundaries": [p.tolist() for p in it.boundaries],
              "covered_top10": [c[:10].tolist() for c in it.covered],
              "n_distinct_boundaries": ri.n_distinct_boundaries},
    )
