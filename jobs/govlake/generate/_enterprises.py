"""Enterprises of the city: pure functions of (seed, index); the USCC is unique per index.

Indices ``0 .. n_ent-1`` are the registry (amr.enterprise); larger indices are enterprises
registered elsewhere (双公示 subjects that gold joins will not find).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from govlake.generate import _ids
from govlake.generate._calendar import day_number, day_text, seconds_text
from govlake.generate._people import DISTRICT_NAMES, REGIONS, person_columns
from govlake.generate._random import (
    coprime_multiplier,
    hash_int,
    hash_u64,
    hash_unit,
    objects,
    pick,
    pick_index,
    weighted,
)
from govlake.generate._vocab import (
    BRAND_CHARS,
    COMPANY_FORMS,
    DISTRICTS,
    INDUSTRIES,
    SHOP_WORDS,
    STREETS,
    VILLAGES,
)

_ORG_SPACE = 31**6
# (kind, USCC prefix, weight); kinds: corp, indiv (个体工商户), coop, other (A/N/Y registrations).
_KINDS = weighted([(("corp", "91"), 80), (("indiv", "92"), 12), (("coop", "93"), 3),
                   (("other", "A1"), 1), (("other", "N2"), 2), (("other", "Y1"), 2)])
_REGION = weighted([(i, w) for i, (_c, _n, w) in enumerate(DISTRICTS)])
_BRAND = objects(BRAND_CHARS)
_INDUSTRY_WORD = objects([w for w, _c, _x in INDUSTRIES])
_INDUSTRY_CODE = objects([c for _w, c, _x in INDUSTRIES])
_INDUSTRY = weighted([(i, w) for i, (_w, _c, w) in enumerate(INDUSTRIES)])
_FORM = weighted(COMPANY_FORMS)
_SHOP = objects(SHOP_WORDS)
_STREETS = objects(STREETS)
_VILLAGES = objects(VILLAGES)
_STATUS = weighted([("存续", 84), ("在业", 8), ("吊销", 3), ("注销", 4), ("迁出", 1)])
_CAPITAL = {"corp": [10, 50, 100, 200, 300, 500, 1000, 2000, 5000, 12.5, 88.8],
            "indiv": [1, 2, 3, 5, 10], "coop": [10, 30, 50, 100], "other": [10, 50, 100]}

SUBJECT_TYPE = {"corp": "法人及非法人组织", "coop": "法人及非法人组织", "other": "法人及非法人组织",
                "indiv": "个体工商户"}


def _brand(seed: int, salt: str, idx: np.ndarray) -> np.ndarray:
    h = hash_int(seed, salt, idx, 1 << 40)
    n = len(_BRAND)
    three = h // (n**3) % 10 < 3
    return _BRAND[h % n] + _BRAND[h // n % n] + np.where(three, _BRAND[h // (n * n) % n], "")


def enterprise_columns(seed: int, idx: np.ndarray, *, n_pop: int, as_of: dt.date,
                       n_ent: int) -> dict[str, np.ndarray]:
    """Registry attributes (amr.enterprise columns) of enterprises ``idx``, plus ``kind``,
    ``subject_type``, ``legal_rep_person`` (index into the population) and ``old_name`` (a
    former name, used for disagreements). Values are object arrays of str."""
    idx = np.asarray(idx, dtype=np.int64)
    prefix_kind = pick(_KINDS, hash_unit(seed, "ent-kind", idx))
    kind = objects([k for k, _p in prefix_kind])
    prefix = np.array([p for _k, p in prefix_kind], dtype="U2")
    region_i = pick_index(_REGION, hash_unit(seed, "ent-region", idx))
    region = REGIONS[region_i]
    district = DISTRICT_NAMES[region_i]
    a = coprime_multiplier(_ORG_SPACE, seed)
    b = int(hash_u64(seed, "ent-org", np.zeros(1))[0] % np.uint64(_ORG_SPACE))
    org = (idx % _ORG_SPACE * a + b) % _ORG_SPACE
    uscc = _ids.uscc(prefix, region.astype("U6"), _ids.org_codes(org))

    ind = pick_index(_INDUSTRY, hash_unit(seed, "ent-industry", idx))
    form = pick(_FORM, hash_unit(seed, "ent-form", idx))
    rep = hash_int(seed, "ent-rep", idx, max(n_pop, 1))
    person = person_columns(seed, rep)
    h = hash_int(seed, "ent-misc", idx, 1 << 40)
    names = {}
    for salt in ("ent-brand", "ent-oldbrand"):
        brand = _brand(seed, salt, idx)
        corp = "济南" + brand + _INDUSTRY_WORD[ind] + form
        indiv = "济南市" + district + person["name"] + _SHOP[h % len(_SHOP)]
        coop = "济南市" + district + brand + "农民专业合作社"
        other = np.where(prefix == "N2", "济南市" + district + _VILLAGES[h % len(_VILLAGES)] + "村股份经济合作社",
                         np.where(prefix == "A1", "济南" + brand + "保障服务中心", "济南市" + brand + "商会"))
        names[salt] = objects(np.select([kind == "corp", kind == "indiv", kind == "coop"],
                                        [corp, indiv, coop], other))

    cap_u = hash_int(seed, "ent-capital", idx, 1 << 20)
    capital = np.empty(len(idx), dtype=object)
    for k, values in _CAPITAL.items():
        sel = kind == k
        capital[sel] = np.array([str(v) for v in values], dtype=object)[cap_u[sel] % len(values)]

    end = day_number(as_of)
    span = 365 * 86400 - 8 * 3600
    step = span // max(n_ent, 1)
    start = (end - 365) * 86400
    jitter = hash_int(seed, "ent-updated", idx, max(step, 1)) if step > 1 else 0
    updated = start + idx * max(step, 1) + jitter
    first = day_number(dt.date(1995, 1, 1))
    est_u = hash_unit(seed, "ent-established", idx) ** 0.7
    established = np.minimum(first + (est_u * (end - 30 - first)).astype(np.int64), updated // 86400)

    authority = np.where(h // 7 % 10 < 7, "济南市" + district + "行政审批服务局", "济南市市场监督管理局")
    room = np.where(h // 11 % 3 == 0, objects((h // 13 % 20 + 1).astype("U2")) + "号楼"
                    + objects((h // 17 % 20 + 1).astype("U2")) + "0" + objects((h // 19 % 9 + 1).astype("U1"))
                    + "室", "")
    address = ("山东省济南市" + district + _STREETS[h // 23 % len(_STREETS)]
               + objects((h // 29 % 500 + 1).astype("U3")) + "号" + room)
    return {
        "uscc": uscc,
        "name": names["ent-brand"],
        "legal_rep": person["name"],
        "legal_rep_id": person["id_number"],
        "reg_capital": capital,
        "established": day_text(established),
        "reg_authority": objects(authority),
        "address": objects(address),
        "region_code": region,
        "industry_code": np.where(kind == "other", "S9221", _INDUSTRY_CODE[ind]).astype(object),
        "status": pick(_STATUS, hash_unit(seed, "ent-status", idx)),
        "updated_at": seconds_text(updated),
        "kind": kind,
        "subject_type": objects([SUBJECT_TYPE[k] for k in kind]),
        "legal_rep_person": rep,
        "old_name": names["ent-oldbrand"],
    }


def other_address(address: str, k: int) -> str:
    """The same street with another house number (a disagreeing copy of ``address``)."""
    head, sep, tail = address.partition("号")
    digits = len(head) - len(head.rstrip("0123456789"))
    number = int(head[-digits:]) if digits else 0
    return f"{head[:len(head) - digits]}{number + 2 + k % 40}{sep}{tail}"
