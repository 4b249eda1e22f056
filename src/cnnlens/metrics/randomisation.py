"""Sanity checks as metrics (Adebayo et al. 2018; docs/algorithms.md §10.1): ``mprt`` and ``drt``.

- ``mprt`` ↓ — model parameter randomisation: the method is re-run on a deep copy of the model
  with every layer re-initialised (the last step of the cascading test, seeded by ``evaluate``'s
  ``seed``); per image, the Spearman rank correlation of the absolute maps (the paper's "rank
  correlation (abs)", Quantus's default). Lower is better: a map that survives randomisation does
  not explain the model.
- ``drt`` ↓ — data randomisation: the same correlation between the maps on ``clf`` and on
  ``second_model`` (the same architecture trained on permuted labels, e.g. the zoo's
  ``mnist_cnn_s_random_labels``), same images and targets.

Both need an :class:`~cnnlens.Explanation` (the method is re-run with its recorded parameters);
the layer-by-layer curves and the other similarities are in :mod:`cnnlens.sanity`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..errors import CnnlensError
from ._common import MetricResult
from .registry import register

if TYPE_CHECKING:
    from .context import MetricContext

__all__ = ["mprt", "drt"]


def _rerun(ctx: MetricContext, clf: Any) -> torch.Tensor:
    """The explanation's method with its recorded parameters on ``clf`` (methods that explain only
    the model's own decision — DA — explain ``clf``'s prediction)."""
    from ..attribution import explain, method_info
    from ..sanity import OWN_DECISION

    exp = ctx.explanation
    name = ctx.info.name if ctx.info is not None else "this metric"
    if ctx.method is None or not hasattr(exp, "params"):
        raise CnnlensError(f"metric {name!r} re-runs the method: pass an Explanation, not bare maps")
    if ctx.method not in OWN_DECISION:
        return ctx.explain_again(clf=clf).detach()
    accepted = set(method_info(ctx.method).params) | {"first_index"}
    params = {k: v for k, v in exp.params.items() if k in accepted}
    return explain(clf, ctx.x, ctx.method, target=None, seed=exp.params.get("seed", 0),
                   batch_size=exp.params.get("batch_size", ctx.options.batch_size), layer=exp.params.get("layer"),
                   **params).maps.detach()


def _score(ctx: MetricContext, other: Any, extra: dict[str, Any]) -> MetricResult:
    from ..sanity import OWN_DECISION, similarity

    if not hasattr(ctx.explanation, "maps"):
        name = ctx.info.name if ctx.info is not None else "this metric"
        raise CnnlensError(f"metric {name!r} re-runs the method: pass an Explanation, not bare maps")
    original = ctx.explanation.maps.detach()
    again = _rerun(ctx, other)
    values, undefined = similarity(original, again, ("spearman_abs",))
    params = {**ctx.common, **extra, "similarity": "Spearman rank correlation of |maps| (average ranks for ties)",
              "undefined": "a constant map: value 0, counted in n_constant"}
    if ctx.method in OWN_DECISION:
        params["target_on_other_model"] = "its own prediction (the method explains only the model's decision)"
    return ctx.result(values[0], params, int(undefined.sum()))


@register("mprt", direction="↓", needs=("method",), order=30,
          description="model parameter randomisation: Spearman |map| correlation with the fully randomised model (Adebayo 2018)")
def mprt(ctx: MetricContext) -> MetricResult:
    from ..sanity import fully_randomised

    other = fully_randomised(ctx.clf, seed=ctx.options.seed)
    return _score(ctx, other, {"randomisation": "every layer re-initialised with reset_parameters() "
                                                "(cascading test, last step); seed stream sanity.init"})


@register("drt", direction="↓", needs=("method", "second_model"), order=31,
          description="data randomisation: Spearman |map| correlation with a model trained on permuted labels (Adebayo 2018)")
def drt(ctx: MetricContext) -> MetricResult:
    from ..classifier import Classifier

    other = ctx.need("second_model")
    if not isinstance(other, Classifier):
        raise CnnlensError(f"metric 'drt' needs second_model= a cnnlens.Classifier, got {type(other).__name__}")
    return _score(ctx, other, {"second_model": repr(other)})
