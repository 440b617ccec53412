"""Deterministic randomness: seeded generators per batch, and counter-based hashes.

Enterprises and persons are pure functions of ``(seed, index)`` (splitmix64 over numpy
``uint64`` arrays), so any resource can look up enterprise ``i`` without holding the
registry in memory, and the same enterprise reads the same in every department's copy.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def stable_id(text: str) -> int:
    """A small integer naming a stream (resource, file), stable across Python runs."""
    return zlib.crc32(text.encode("utf-8"))


def hash_u64(seed: int, salt: str, idx: np.ndarray) -> np.ndarray:
    """One pseudo-random uint64 per index, for stream ``salt`` of ``seed``."""
    key = _mix(np.array([(seed & 0xFFFFFFFF) << 32 | stable_id(salt)], dtype=np.uint64))
    with np.errstate(over="ignore"):
        return _mix(np.asarray(idx, dtype=np.uint64) * _GOLDEN ^ key)


def hash_int(seed: int, salt: str, idx: np.ndarray, n: int) -> np.ndarray:
    """Pseudo-random integers in ``[0, n)`` (int64), one per index."""
    return (hash_u64(seed, salt, idx) % np.uint64(n)).astype(np.int64)


def hash_unit(seed: int, salt: str, idx: np.ndarray) -> np.ndarray:
    """Pseudo-random floats in ``[0, 1)``, one per index."""
    return (hash_u64(seed, salt, idx) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def batch_rng(seed: int, *stream: str | int) -> np.random.Generator:
    """The generator of one batch: a function of the seed and the stream's names."""
    parts = [seed & 0xFFFFFFFF] + [stable_id(s) if isinstance(s, str) else int(s) for s in stream]
    return np.random.default_rng(parts)


def weighted(table: list[tuple[object, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Values (object array) and cumulative probabilities of a weighted table."""
    values = np.empty(len(table), dtype=object)
    values[:] = [v for v, _w in table]
    weights = np.array([w for _v, w in table], dtype=np.float64)
    return values, np.cumsum(weights / weights.sum())


def pick(table: tuple[np.ndarray, np.ndarray], u: np.ndarray) -> np.ndarray:
    """Values of a :func:`weighted` table for uniforms ``u``."""
    values, cum = table
    return values[np.minimum(np.searchsorted(cum, u, side="right"), len(values) - 1)]


def pick_index(table: tuple[np.ndarray, np.ndarray], u: np.ndarray) -> np.ndarray:
    _values, cum = table
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def objects(values) -> np.ndarray:
    """A 1-d object array of Python strings (numpy ``U`` arrays convert element-wise)."""
    arr = np.asarray(values)
    if arr.dtype == object:
        return arr
    out = np.empty(arr.shape[0], dtype=object)
    out[:] = arr.tolist()
    return out


def coprime_multiplier(n: int, seed: int) -> int:
    """A multiplier ``a`` with gcd(a, n) = 1, so ``(a*i + b) mod n`` permutes ``range(n)``."""
    from math import gcd

    a = (0x5851F42D4C957F2D + seed * 2654435761) % max(n, 1) or 1
    while gcd(a, n) != 1:
        a += 1
    return a


def formatted(values: np.ndarray, fmt: str) -> np.ndarray:
    """``fmt % value`` per element (object array), formatting each distinct value once."""
    values = np.asarray(values)
    if values.size == 0:
        return np.empty(0, dtype=object)
    if values.dtype.kind in "iu":
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4096:  # a small range: a lookup table, no sort
            table = np.empty(hi - lo + 1, dtype=object)
            table[:] = [fmt % v for v in range(lo, hi + 1)]
            return table[values - lo]
    uniq, inverse = np.unique(values, return_inverse=True)
    table = np.empty(len(uniq), dtype=object)
    table[:] = [fmt % v for v in uniq.tolist()]
    return table[inverse.reshape(-1)]


def choose(cond: np.ndarray, a, b) -> np.ndarray:
    """Object array: ``a`` where ``cond`` else ``b`` (each a str or an array); shares the str
    objects instead of copying them as ``np.where`` on two strings would."""
    cond = np.asarray(cond, dtype=bool)
    out = np.empty(cond.shape[0], dtype=object)
    out[:] = b
    out[cond] = a[cond] if isinstance(a, np.ndarray) else a
    return out
