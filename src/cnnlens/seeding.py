"""Seed streams (docs/algorithms.md §11): where every random number of cnnlens comes from.

- Randomness that belongs to **one image** — LIME's samples and quickshift's tie-breaking, DA's
  proposals, the random baseline maps of ``compare``, the input noise of max-/average-sensitivity
  — is drawn from
  ``numpy.random.SeedSequence([seed, first_index + i, stream])`` for the i-th image of a call.
  ``first_index`` (a keyword of ``explain``, ``evaluate``, ``compare`` and ``dynamic_ablation``,
  default 0) is the image's position in the whole data set, so ``explain(x[i:i+1],
  first_index=i, seed=s)`` draws what ``explain(x, seed=s)`` draws for image i: a result never
  depends on its neighbours, the batch or the shard layout.
- Randomness **shared by a run** — RISE's masks, extremal perturbation's jitter, RI's sampled
  boundaries and its reuse resampling, the metrics' tie-break permutation, NeSy's P matrix — is
  drawn from ``SeedSequence([seed, stream])``.

``stream`` is a fixed small integer per use (:data:`STREAMS`); one name per use, so two uses
never share numbers. Seeds may be any integer (negative ones are taken modulo 2⁶⁴).

Example::

    >>> from cnnlens import seeding
    >>> g = seeding.image_generator(0, 5, "lime.samples")
    >>> import torch
    >>> a = torch.rand(3, generator=g)
    >>> b = torch.rand(3, generator=seeding.image_generators(0, 2, "lime.samples", first_index=4)[1])
    >>> bool(torch.equal(a, b))
    True
"""
from __future__ import annotations

import numpy as np
import torch

from . import validation
from .errors import CnnlensError

__all__ = ["STREAMS", "image_sequence", "run_sequence", "image_generator", "image_generators", "run_generator",
           "image_int", "run_int", "to_generator"]

# one fixed number per use of randomness (never reuse or renumber: results depend on them)
STREAMS: dict[str, int] = {
    "lime.samples": 1,
    "lime.segments": 2,
    "rise.masks": 3,
    "extremal.jitter": 4,
    "da.proposals": 5,
    "ri.boundaries": 6,
    "ri.reuse": 7,
    "metrics.tie_break": 8,
    "compare.random_maps": 9,
    "nesy.p_matrix": 10,
    "metrics.sensitivity": 11,
    "nesy.rank_rng": 12,
    "sanity.init": 16,  # per layer (index = position in named_modules()), not per image
    "ace.concepts": 21,  # per ACE run (index = the explained class, or the reference cluster in reuse)
}


def _stream(stream: str | int) -> int:
    if isinstance(stream, str):
        if stream not in STREAMS:
            raise CnnlensError(f"unknown seed stream {stream!r}; add it to cnnlens.seeding.STREAMS")
        return STREAMS[stream]
    return validation.integer("stream", stream, minimum=0, hint="a name of cnnlens.seeding.STREAMS or its number")


def _entropy(seed: int) -> int:
    return validation.seed(seed) % (1 << 64)


def image_sequence(seed: int, index: int, stream: str | int) -> np.random.SeedSequence:
    """``SeedSequence([seed, index, stream])``: the randomness of the image at data-set position ``index``."""
    return np.random.SeedSequence([_entropy(seed), validation.integer("index", index, minimum=0), _stream(stream)])


def run_sequence(seed: int, stream: str | int) -> np.random.SeedSequence:
    """``SeedSequence([seed, stream])``: randomness shared by a whole run."""
    return np.random.SeedSequence([_entropy(seed), _stream(stream)])


def to_generator(seq: np.random.SeedSequence) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with 64 bits of ``seq``."""
    if not isinstance(seq, np.random.SeedSequence):
        raise CnnlensError(f"seq must be a numpy.random.SeedSequence, got {type(seq).__name__}")
    state = seq.generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def image_generator(seed: int, index: int, stream: str | int) -> torch.Generator:
    """The ``torch.Generator`` of the image at data-set position ``index``."""
    return to_generator(image_sequence(seed, index, stream))


def image_generators(seed: int, n: int, stream: str | int, first_index: int = 0) -> list[torch.Generator]:
    """Generators of the ``n`` images of a call starting at data-set position ``first_index``."""
    n = validation.integer("n", n, minimum=0)
    first_index = validation.integer("first_index", first_index, minimum=0)
    return [image_generator(seed, first_index + i, stream) for i in range(n)]


def run_generator(seed: int, stream: str | int) -> torch.Generator:
    """The ``torch.Generator`` of randomness shared by a run."""
    return to_generator(run_sequence(seed, stream))


def image_int(seed: int, index: int, stream: str | int) -> int:
    """A 31-bit integer seed for a library that takes one (e.g. scikit-image's ``rng=``)."""
    return int(image_sequence(seed, index, stream).generate_state(1, dtype=np.uint32)[0] >> 1)


def run_int(seed: int, stream: str | int) -> int:
    """A 31-bit integer seed shared by a run."""
    return int(run_sequence(seed, stream).generate_state(1, dtype=np.uint32)[0] >> 1)
