"""Counter-based Poisson(1) bootstrap weights, keyed by (seed, subject, replicate).

The multiway ("pigeonhole") bootstrap (Owen 2007; Owen & Eckles 2012) gives every subject an
independent Poisson(1) weight per replicate; a composite's weight is the product of its two
subjects' weights. A subject's weight must be the same wherever its composites land (any shard,
any worker, any order), so weights are a pure function of the subject id: blake2b(seed, subject)
is a 64-bit key, and replicate ``r`` reads the ``r``-th output of the SplitMix64 stream started
at that key (Steele, Lea & Flood 2014: output r = mix(key + (r + 1) * golden gamma), a function
of key and counter only), mapped to a uniform and then to Poisson(1) by inverse CDF. No state is
shared, so the bootstrap can stream through a Beam CombineFn, and a whole block of subjects x
replicates is a few vectorised integer operations (a generator object per subject was the
stage's largest single cost).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np

#: Largest weight kept; P(Poisson(1) > 30) < 1e-33, so clipping never matters in practice.
MAX_WEIGHT = 30

_POISSON1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(MAX_WEIGHT + 1)])
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Subjects per vectorised block (block x replicates uint64 temporaries: 32 MB at 1,000).
_BLOCK = 4096


def subject_key(subject_id: str, seed: int) -> int:
    """64-bit stream key for one subject: a keyed hash, so ids need no registry or order."""
    digest = hashlib.blake2b(
        subject_id.encode("utf-8"), digest_size=8, key=int(seed).to_bytes(8, "little", signed=True)
    ).digest()
    return int.from_bytes(digest, "little")


#: Counts found by comparisons in :func:`poisson1_from_uniform`; P(count >= this) < 1e-5.
_COMPARED = 8


def poisson1_from_uniform(u: np.ndarray) -> np.ndarray:
    """Inverse-CDF map of uniforms in [0, 1) to Poisson(1) counts (uint8): the number of CDF
    values <= u, counted by a few vectorised comparisons (a search per value is 5x slower) and
    by a search for the rare u beyond them."""
    out = np.zeros(u.shape, dtype=np.uint8)
    for c in _POISSON1_CDF[:_COMPARED]:
        out += u >= c
    tail = out == _COMPARED
    if tail.any():
        found = np.searchsorted(_POISSON1_CDF, u[tail], side="right")
        out[tail] = found.clip(0, MAX_WEIGHT).astype(np.uint8)
    return out


def _splitmix(keys: np.ndarray, replicates: int) -> np.ndarray:
    """Uniforms ``[subject, replicate]`` in [0, 1): SplitMix64 outputs 1..replicates of each key."""
    z = keys[:, None] + np.arange(1, replicates + 1, dtype=np.uint64)[None, :] * _GAMMA
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def weight_matrix(subject_ids: Iterable[str], replicates: int, seed: int) -> np.ndarray:
    """Weights for many subjects, shape ``(n_subjects, replicates)``, uint8. Replicate ``r``'s
    weight does not depend on ``replicates`` or on the other ids: asking for more replicates
    extends each stream without changing the earlier ones."""
    keys = np.array([subject_key(sid, seed) for sid in subject_ids], dtype=np.uint64)
    out = np.empty((len(keys), replicates), dtype=np.uint8)
    with np.errstate(over="ignore"):  # uint64 arithmetic is mod 2^64 by design
        for start in range(0, len(keys), _BLOCK):
            block = slice(start, start + _BLOCK)
            out[block] = poisson1_from_uniform(_splitmix(keys[block], replicates))
    return out


def subject_weights(subject_id: str, replicates: int, seed: int) -> np.ndarray:
    """Weights of one subject for replicates ``0..replicates-1``, uint8 ``(replicates,)``."""
    return weight_matrix([subject_id], replicates, seed)[0]


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
        rows = self._rows
        missing = [sid for sid in dict.fromkeys(subject_ids) if sid not in rows]
        if len(rows) + len(missing) > self.max_subjects:
            rows.clear()
            missing = list(dict.fromkeys(subject_ids))
        if missing:
            rows.update(zip(missing, weight_matrix(missing, self.replicates, self.seed)))
        out = np.empty((len(subject_ids), self.replicates), dtype=np.uint8)
        for i, sid in enumerate(subject_ids):
            out[i] = rows[sid]
        return out
