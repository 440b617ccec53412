"""Identifier checks: python-stdnum wrapped for A/N/Y codes, and the SQL forms agree with Python."""

from __future__ import annotations

import random

import duckdb
import pytest
from stdnum.cn import uscc as stdnum_uscc

from govlake.identifiers import (
    USCC_ALPHABET,
    is_valid_id_number,
    is_valid_uscc,
    ric_check_char,
    sql_id_number_valid,
    sql_uscc_valid,
    upgrade_id15,
    uscc_check_char,
)
from govlake.transform import DUCKDB


def test_domain_example_has_wrong_check_character():
    assert not is_valid_uscc("91350100M000100Y4Z")
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert is_valid_uscc("91350100M000100Y43")


@pytest.mark.parametrize("prefix", ["A1370100MA3C0000X", "N2370100MA3C0000X", "Y1370100MA3C0000X"])
def test_codes_of_registration_departments_a_n_y_are_valid_here_but_not_in_stdnum(prefix):
    code = prefix + uscc_check_char(prefix)
    assert is_valid_uscc(code)
    assert not stdnum_uscc.is_valid(code)  # the gap this wrapper fills


def test_letters_outside_the_alphabet_are_rejected():
    for bad in ("I", "O", "Z", "S", "V"):
        body = "9137010" + bad + "MA3C0000X"
        assert not is_valid_uscc(body + "0")


def test_id_number_check_and_birth_date():
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    first17 = "37010220250230123"  # 30 February
    assert not is_valid_id_number(first17 + ric_check_char(first17))


def test_legacy_15_digit_upgrade():
    assert upgrade_id15("110105491231002") == "11010519491231002X"


def _random_uscc(rng: random.Random) -> str:
    first = rng.choice("123456789ANY")
    body = first + rng.choice("123459") + "370102" + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    code = body + uscc_check_char(body)
    if rng.random() < 0.5:  # corrupt the check character half of the time
        code = body + rng.choice([c for c in USCC_ALPHABET if c != code[-1]])
    return code


def test_sql_uscc_check_agrees_with_python_on_random_codes():
    rng = random.Random(7)
    codes = [_random_uscc(rng) for _ in range(2000)]
    con = duckdb.connect()
    con.execute("create table t (c varchar)")
    con.executemany("insert into t values (?)", [[c] for c in codes])
    got = dict(con.execute(f"select c, {sql_uscc_valid('c', DUCKDB)} from t").fetchall())
    assert got == {c: is_valid_uscc(c) for c in codes}
    assert 800 < sum(got.values()) < 1200


def test_sql_id_number_check_agrees_with_python():
    rng = random.Random(3)
    numbers = []
    for _ in range(2000):
        first17 = "370102" + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 31):02d}" + \
            f"{rng.randint(0, 999):03d}"
        check = ric_check_char(first17)
        numbers.append(first17 + (check if rng.random() < 0.5 else rng.choice("0123456789X".replace(check, ""))))
    con = duckdb.connect()
    con.execute("create table t (c varchar)")
    con.executemany("insert into t values (?)", [[n] for n in numbers])
    expr = sql_id_number_valid("c", DUCKDB)
    got = dict(con.execute(f"select c, coalesce({expr}, false) from t").fetchall())
    assert got == {n: is_valid_id_number(n) for n in numbers}
