"""`govlake ingest credit.penalty --file` on a GBK file with broken rows, as a user would run it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest
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


@pytest.mark.slow
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


def _invoke(tmp_path, monkeypatch, *args: str):
    """``govlake …`` in this process (CliRunner), with var/ and the inbox under tmp_path."""
    from typer.testing import CliRunner

    from govlake.cli import app

    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("GOVLAKE_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("GOVLAKE_SOURCE_DB_URL", f"sqlite:///{tmp_path / 'no-such-registry.sqlite'}")
    return CliRunner().invoke(app, list(args))


MARKUP = ["[/x]", "[bold]b", "[link=file:///etc/passwd]x[/link]"]


def test_data_is_printed_literally_never_as_markup_or_control_codes(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox/credit/penalty"
    inbox.mkdir(parents=True)
    (inbox / "[bold]x[_x].csv").write_text(",".join(MARKUP) + "\n1,2,3\n", encoding="utf-8")
    named = inbox / "new\nline\x1b[31mred.csv"
    named.write_text(",".join(["行政相对人名称"] + MARKUP) + "\n1,2,3,4\n", encoding="utf-8")

    out = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty")

    assert out.exit_code == 1, out.output
    text = out.output
    assert "credit.penalty: rejected 0 rows from " + str(inbox / "[bold]x[_x].csv") in text
    assert str(inbox) + "/new\\nline\\x1b[31mred.csv" in text  # escaped, never raw
    assert "\x1b" not in text and "line\x1b" not in text
    assert "the header is: 行政相对人名称, [/x], [bold]b, [link=file:///etc/passwd]x[/link]" in text
    assert "Traceback" not in text


def test_ingest_all_goes_on_past_failing_sources_and_sums_up(tmp_path, monkeypatch):
    from govlake import pipeline

    good = tmp_path / "inbox/credit/penalty/good.csv"
    good.parent.mkdir(parents=True)
    good.write_bytes(_penalty_csv([_row(1), _row(2)]))
    real = pipeline.ingest

    def flaky(code, **kwargs):
        if code == "psb.population":
            raise RuntimeError("disk on fire")
        return real(code, **kwargs)

    monkeypatch.setattr(pipeline, "ingest", flaky)
    out = _invoke(tmp_path, monkeypatch, "ingest", "--all")

    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert any(line.startswith("amr.enterprise: rejected 0 rows from db:amr_enterprise") for line in lines)
    assert "psb.population: failed — RuntimeError: disk on fire" in out.output
    assert "credit.penalty: landed 2 rows from " + str(good) in out.output
    summary = {line.split("│")[1].strip(): line for line in lines if line.count("│") > 5}
    assert set(summary) >= set(get_catalog().resources) - {"hrss.social_insurance"}  # long codes fold
    assert [c.strip() for c in summary["credit.penalty"].split("│")[2:6]] == ["1", "0", "0", "2"]
    assert [c.strip() for c in summary["amr.enterprise"].split("│")[2:6]] == ["0", "0", "1", "0"]
    n = len(get_catalog().resources)   # amr.enterprise (no registry database) and psb.population fail
    assert f"{n - 2} of {n} resources without a rejected source; 2 with a rejected source or failed" in out.output
    bronze = DeltaTable(str(tmp_path / "var/lake/bronze/credit_penalty")).to_pyarrow_dataset()
    assert bronze.count_rows() == 2


def test_discovery_exits_1_when_a_file_is_rejected_after_landing_the_others(tmp_path, monkeypatch):
    folder = tmp_path / "inbox/credit/penalty"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_bytes(_penalty_csv([_row(1)]))
    (folder / "b.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    out = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty")
    assert out.exit_code == 1
    assert f"landed 1 rows from {folder / 'a.csv'}" in out.output
    assert f"{folder / 'b.csv'}: not a text file (it is a PNG image)" in out.output
    again = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty")  # still rejected: still 1
    assert again.exit_code == 1 and "skipped_already_ingested" in again.output
    (folder / "b.csv").unlink()
    assert _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty").exit_code == 0


@pytest.mark.slow
def test_a_python_c_process_importing_the_quality_step_runs_to_its_end():
    """PySpark (the spark group) exits a ``python -c`` process with status 0 when it is imported
    there without Spark Connect's packages (pyspark.sql.connect.utils: "Skipping doctests"). Great
    Expectations imports it, so every govlake step run that way did nothing and reported success;
    the lock installs pyspark[connect]."""
    code = "import great_expectations, govlake.quality; print('reached the end')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("reached the end"), out.stderr[-2000:]
