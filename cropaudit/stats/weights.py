"""Counter-based Poisson(1) bootstrap weights, keyed by (seed, subject, replicate).

The multiway ("pigeonhole") bootstrap (Owen 2007; Owen & Eckles 2012) gives every subject an
independent Poisson(1) weight per replicate; a composite's weight is the product of its two
subjects' weights. A subject's weight must be the same wherever its composites land (any shard,
any worker, any order), so weights are a pure function of the subject id: blake2b(seed, subject)
is the key of a Philox counter-based generator, and replicate ``r`` reads the ``r``-th uniform of
that stream (Philox output ``r`` depends only on key and counter), mapped to Poisson(1) by inverse
CDF. No state is shared, so the bootstrap can stream through a Beam CombineFn.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np

#: Largest weight kept; P(Poisson(1) > 30) < 1e-33, so clipping never matters in practice.
MAX_WEIGHT = 30

_POISSON1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(MAX_WEIGHT + 1)])


def subject_key(subject_id: str, seed: int) -> int:
    """128-bit Philox key for one subject: a keyed hash, so ids need no registry or order."""
    digest = hashlib.blake2b(
        subject_id.encode("utf-8"), digest_size=16, key=int(seed).to_bytes(8, "little", signed=True)
    ).digest()
    return int.from_bytes(digest, "little")


def poisson1_from_uniform(u: np.ndarray) -> np.ndarray:
    """Inverse-CDF map of uniforms in [0, 1) to Poisson(1) counts (uint8)."""
    return np.searchsorted(_POISSON1_CDF, u, side="right").clip(0, MAX_WEIGHT).astype(np.uint8)


def subject_weights(subject_id: str, replicates: int, seed: int) -> np.ndarray:
    """Weights of one subject for replicates ``0..replicates-1`` (uint8, shape ``(replicates,)``).

    Replicate ``r``'s weight does not depend on ``replicates``: asking for more replicates
    extends the stream without changing the earlier ones.
    """
    bitgen = np.random.Philox(key=subject_key(subject_id, seed))
    return poisson1_from_uniform(np.random.Generator(bitgen).random(replicates))


def weight_matrix(subject_ids: Iterable[str], replicates: int, seed: int) -> np.ndarray:
    """Weights for many subjects, shape ``(n_subjects, replicates)``, uint8."""
    ids = list(subject_ids)
    out = np.empty((len(ids), replicates), dtype=np.uint8)
    for i, sid in enumerate(ids):
        out[i] = subject_weights(sid, replicates, seed)
    return out


class WeightCache:
    """Memoises subject weights on one worker. Not part of any accumulator (never pickled with
    data); bounded by ``max_subjects`` so memory stays O(subjects x replicates) at worst."""

    def __init__(self, replicates: int, seed: int, max_subjects: int = 200_000) -> None:
        self.replicates = replicates
        self.seed = seed
        self.max_subjects = max_subjects
        self._rows: dict[str, np.ndarray] = {}

    def lookup(self, subject_ids: Sequence[str]) -> np.ndarray:
        """Weights for ``subject_ids`` (in that order), shape ``(len(ids), replicates)``."""
        out = np.empty((len(subject_ids), self.replicates), dtype=np.uint8)
        rows = self._rows
        for i, sid in enumerate(subject_ids):
            w = rows.get(sid)
            if w is None:
                if len(rows) >= self.max_subjects:
                    rows.clear()
                w = rows[sid] = subject_weights(sid, self.replicates, self.seed)
            out[i] = w
        return out
