"""Persons of the city: pure functions of (seed, index); 身份证号 unique per index."""

from __future__ import annotations

import datetime as dt

import numpy as np

from govlake.generate import _ids
from govlake.generate._calendar import day_number, iso
from govlake.generate._random import (
    choose,
    coprime_multiplier,
    hash_int,
    hash_u64,
    objects,
    pick,
    weighted,
)
from govlake.generate._vocab import (
    DISTRICTS,
    GIVEN_FEMALE,
    GIVEN_MALE,
    MOBILE_PREFIXES,
    STREETS,
    SURNAMES,
)

_BIRTH_FIRST = day_number(dt.date(1950, 1, 1))
_BIRTH_DAYS = day_number(dt.date(2005, 12, 31)) - _BIRTH_FIRST + 1
_SLOTS = 999  # sequence numbers 001-999
_SPACE = len(DISTRICTS) * _BIRTH_DAYS * _SLOTS

REGIONS = objects([c for c, _n, _w in DISTRICTS])
DISTRICT_NAMES = objects([n for _c, n, _w in DISTRICTS])
_SURNAMES = weighted(SURNAMES)
_MALE = objects(GIVEN_MALE)
_FEMALE = objects(GIVEN_FEMALE)
_STREETS = objects(STREETS)
_MOBILE = objects(MOBILE_PREFIXES)


def person_columns(seed: int, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Attributes of persons ``idx``: id_number, name, sex (男/女), birth_date, hukou_region,
    address, mobile (object arrays of str)."""
    idx = np.asarray(idx, dtype=np.int64)
    a = coprime_multiplier(_SPACE, seed)
    b = int(hash_u64(seed, "person-offset", np.zeros(1))[0] % np.uint64(_SPACE))
    # (a*i + b) mod M without overflow: a < M < 2**28 and i < 2**34.
    p = (idx % _SPACE * a % _SPACE + b) % _SPACE
    region_i = p % len(DISTRICTS)
    rest = p // len(DISTRICTS)
    birth = _BIRTH_FIRST + rest % _BIRTH_DAYS
    seq = rest // _BIRTH_DAYS + 1
    male = seq % 2 == 1
    birth_iso = iso(birth)
    number = _ids.ric(REGIONS[region_i].astype("U6"), np.char.replace(birth_iso, "-", ""), seq)

    u = hash_u64(seed, "person-name", idx)
    surname = pick(_SURNAMES, (u >> np.uint64(11)).astype(np.float64) / float(1 << 53))
    g1 = (u % np.uint64(1000)).astype(np.int64)
    g2 = ((u >> np.uint64(10)) % np.uint64(1000)).astype(np.int64)
    two = (u >> np.uint64(20)) % np.uint64(10) < np.uint64(6)
    male_first = _MALE[g1 % len(_MALE)]
    female_first = _FEMALE[g1 % len(_FEMALE)]
    first = np.where(male, male_first, female_first)
    second = np.where(male, _MALE[g2 % len(_MALE)], _FEMALE[g2 % len(_FEMALE)])
    name = surname + first + np.where(two, second, "")

    h = hash_int(seed, "person-address", idx, 1 << 40)
    address = ("山东省济南市" + DISTRICT_NAMES[region_i] + _STREETS[h % len(_STREETS)]
               + objects((h // 64 % 300 + 1).astype("U3")) + "号"
               + objects((h // 32768 % 30 + 1).astype("U2")) + "号楼"
               + objects((h // 1048576 % 6 + 1).astype("U1")) + "单元"
               + objects((h // 8388608 % 25 + 1).astype("U2")) + "0"
               + objects((h // 268435456 % 4 + 1).astype("U1")) + "室")
    m = hash_int(seed, "person-mobile", idx, 10**8 * len(_MOBILE))
    mobile = _MOBILE[m // 10**8] + objects(np.char.zfill((m % 10**8).astype("U8"), 8))
    return {
        "id_number": number,
        "name": objects(name),
        "sex": choose(male, "男", "女"),
        "birth_date": objects(birth_iso),
        "hukou_region": REGIONS[region_i],
        "address": objects(address),
        "mobile": objects(mobile),
    }
