"""The random holdout: each recorded list is widened so that callers still get `call_capacity` clients, and a
seeded, rank-stratified draw marks `holdout_share` of it "do not call (control)"; stored with the list, never
changed. Pure functions; the seed is recorded with the list so that the draw can be checked.
"""
from __future__ import annotations

import itertools

import numpy as np

CALL, CONTROL = "call", "control"


def list_size(capacity: int, share: float) -> int:
    """Clients on a list with `capacity` to call and `share` of the list held out: capacity / (1 - share),
    rounded (20 at 0.2: 25, of which 5 held out)."""
    return capacity if share <= 0 else round(capacity / (1 - share))


def assign(size: int, capacity: int, seed: int) -> np.ndarray:
    """CALL or CONTROL for each rank 0..size-1: the size - capacity controls drawn one per stratum of consecutive
    ranks (strata of equal width, at least one rank each), so that the two groups have the same spread of risk
    even on one short list."""
    controls = size - capacity
    groups = np.full(size, CALL, dtype=object)
    if controls <= 0:
        return groups
    edges = np.round(np.arange(controls + 1) * size / controls).astype(int)
    rng = np.random.default_rng(seed)
    picks = [int(rng.integers(low, high)) for low, high in itertools.pairwise(edges)]
    groups[picks] = CONTROL
    return groups
