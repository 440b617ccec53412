"""`govlake ingest credit.penalty --file` on a GBK file with broken rows, as a user would run it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

from deltalake import DeltaTable

from govlake.catalog import get_catalog
from govlake.identifiers import uscc_check_char

USCC = "91370100MA3C0001X" + uscc_check_char("91370100MA3C0001X")
WRONG = USCC[:-1] + ("0" if USCC[-1] != "0" else "1")


def _penalty_csv(rows: list[dict]) -> bytes:
    res = get_catalog().resource("credit.penalty")
    headers = [i.name for i in res.items if i.column != "submitted_at"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers)
    by_name = {i.name: i.column for i in res.items}
    for row in rows:
        w.writerow([row.get(by_name[h], "") for h in headers])
    return buf.getvalue().encode("gbk")


def _row(n: int, **over) -> dict:
    base = dict(subject_name="济南泉水餐饮有限公司", subject_type="法人及非法人组织", uscc=USCC,
                decision_no=f"济环罚〔2026〕{n}号", violation_type="超标排放", facts="超标排放污水",
                basis="水污染防治法第八十三条", penalty_category="罚款", content="罚款2万元", fine_amount="2",
                decision_date="2026-10-09", valid_until="2027-10-09", authority="市生态环境局",
                authority_uscc="11370100MB0000007W", source_dept="市生态环境局",
                source_dept_uscc="11370100MB0000007W")
    base.update(over)
    return base


def test_gbk_file_with_broken_rows(tmp_path):
    rows = [_row(n) for n in range(1, 9)]
    rows.append(_row(9, uscc=WRONG))                         # data row 9: wrong check character
    rows.append(_row(10, violation_type=""))                 # 10: missing required field
    rows.append(_row(11, decision_date="2026-13-45"))        # 11: unparseable date
    rows.append(_row(12, facts="第一行\n第二行，含\"引号\""))  # 12: quoted field with embedded newline (valid)
    path = tmp_path / "ee_20261120.csv"
    path.write_bytes(_penalty_csv(rows))
    env = {**os.environ, "GOVLAKE_VAR": str(tmp_path / "var"), "GOVLAKE_AS_OF": "2026-11-20"}
    cli = [sys.executable, "-m", "govlake.cli", "ingest", "credit.penalty", "--file", str(path)]
    out = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "landed" in out.stdout and "gbk" in out.stdout.lower()
    assert "read 12 = silver 9 + quarantined 3 + duplicates 0" in out.stdout
    assert f"{path}:9: uscc.uscc" in out.stdout and f"{path}:11: format.decision_date" in out.stdout
    quarantine = {r["_row_number"]: r for r in
                  DeltaTable(str(tmp_path / "var/lake/quarantine/credit_penalty")).to_pyarrow_table().to_pylist()}
    assert {n: q["_failed_rules"] for n, q in quarantine.items()} == {
        9: ["uscc.uscc"], 10: ["required.violation_type"], 11: ["format.decision_date"]}
    assert all(q["_source"] == str(path) for q in quarantine.values())
    silver = {r["decision_no"]: r for r in
              DeltaTable(str(tmp_path / "var/lake/silver/credit_penalty")).to_pyarrow_table().to_pylist()}
    assert silver["济环罚〔2026〕12号"]["facts"] == "第一行\n第二行，含\"引号\""
    assert silver["济环罚〔2026〕12号"]["_row_number"] == 12
    # the same file again adds nothing
    again = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "skipped" in again.stdout
    assert DeltaTable(str(tmp_path / "var/lake/bronze/credit_penalty")).to_pyarrow_dataset().count_rows() == 12


def test_unparseable_file_is_rejected_naming_it(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\x00\x01\x02 not a csv \xff\xfe")
    env = {**os.environ, "GOVLAKE_VAR": str(tmp_path / "var")}
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "ingest", "credit.penalty", "--file", str(path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1
    assert "broken.csv" in out.stderr and "Traceback" not in out.stderr
