"""Vectorised 统一社会信用代码 and 身份证号 builders (the checks of govlake.identifiers, in numpy).

tests/test_generate.py holds these to ``uscc_check_char``, ``ric_check_char`` and
``org_code_check_char`` of :mod:`govlake.identifiers`.
"""

from __future__ import annotations

import numpy as np

from govlake.identifiers import (
    ORG_ALPHABET,
    ORG_WEIGHTS,
    RIC_CHECK,
    RIC_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
)

_ALPHA = np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)
_VALUE = np.zeros(256, dtype=np.int64)
_VALUE[_ALPHA] = np.arange(len(USCC_ALPHABET))
_ORG_VALUE = np.zeros(256, dtype=np.int64)  # GB 11714 values: A=10 … Z=35
_ORG_VALUE[np.frombuffer(ORG_ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(len(ORG_ALPHABET))
_RIC = np.frombuffer(RIC_CHECK.encode("ascii"), dtype=np.uint8)


def _text(codes: np.ndarray) -> np.ndarray:
    """Rows of ASCII codes (n, k) → object array of str."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    raw = codes.view(f"S{codes.shape[1]}").ravel()
    out = np.empty(raw.shape[0], dtype=object)
    out[:] = raw.astype(f"U{codes.shape[1]}").tolist()
    return out


def _ascii(strings, width: int) -> np.ndarray:
    """Equal-width ASCII strings → (n, width) uint8."""
    arr = np.asarray(strings).astype(f"S{width}")
    return arr.view(np.uint8).reshape(-1, width)


def org_codes(numbers: np.ndarray) -> np.ndarray:
    """GB 11714 organisation-code bodies: ``MA`` + six base-31 characters of ``numbers``, (n, 8)."""
    n = np.asarray(numbers, dtype=np.int64)
    out = np.empty((n.shape[0], 8), dtype=np.uint8)
    out[:, 0], out[:, 1] = ord("M"), ord("A")
    for pos in range(7, 1, -1):
        out[:, pos] = _ALPHA[n % 31]
        n = n // 31
    return out


def uscc(prefix: np.ndarray, region: np.ndarray, org8: np.ndarray) -> np.ndarray:
    """Valid codes from 2-character prefixes, 6-digit regions and (n, 8) organisation bodies."""
    body = np.empty((org8.shape[0], 17), dtype=np.uint8)
    body[:, 0:2] = _ascii(prefix, 2)
    body[:, 2:8] = _ascii(region, 6)
    body[:, 8:16] = org8
    org_total = (_ORG_VALUE[org8] * np.array(ORG_WEIGHTS)).sum(axis=1)
    c = 11 - org_total % 11
    body[:, 16] = np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), ord("0") + c % 10))
    total = (_VALUE[body] * np.array(USCC_WEIGHTS)).sum(axis=1)
    check = _ALPHA[(31 - total % 31) % 31]
    return _text(np.column_stack([body, check]))


def ric(region: np.ndarray, birth_yyyymmdd: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Valid 18-digit 身份证号 from regions, birth dates (``YYYYMMDD`` text) and 3-digit sequences."""
    seq_text = np.char.zfill(np.asarray(seq).astype("U3"), 3)
    body = np.empty((len(seq_text), 17), dtype=np.uint8)
    body[:, 0:6] = _ascii(region, 6)
    body[:, 6:14] = _ascii(birth_yyyymmdd, 8)
    body[:, 14:17] = _ascii(seq_text, 3)
    total = ((body.astype(np.int64) - ord("0")) * np.array(RIC_WEIGHTS)).sum(axis=1)
    return _text(np.column_stack([body, _RIC[total % 11]]))


def wrong_uscc_check(code: str, k: int) -> str:
    """``code`` with another (hence wrong) check character."""
    i = USCC_ALPHABET.index(code[17])
    return code[:17] + USCC_ALPHABET[(i + 1 + k % 30) % 31]


def wrong_ric_check(number: str, k: int) -> str:
    i = RIC_CHECK.index(number[17])
    return number[:17] + RIC_CHECK[(i + 1 + k % 10) % 11]
