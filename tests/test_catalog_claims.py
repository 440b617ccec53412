"""认领 / 挂载 as a workflow: steps with who/when/why, illegal steps refused, KPIs from the history as of a date.

The repository's catalog: amr.enterprise, credit.license, credit.penalty, hrss.social_insurance and
psb.population carry a YAML ``claimed_by`` (seeded claims), all but amr.enterprise a ``mounted_on`` too
(seeded mounts of their silver tables); court.dishonest, credit.repair and tax.credit_rating do not.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from govlake import locks, storage
from govlake.cli import app
from govlake.config import Settings
from govlake.governance import ClaimError, claim_history, claim_step
from govlake.sharing import sharing_kpis


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _silver(settings: Settings, name: str, rows: int) -> None:
    storage.write_table(storage.table_path(settings, "silver", name), pa.table({"k": [str(i) for i in range(rows)]},
                                                                               schema=pa.schema([("k", pa.string())])),
                        mode="overwrite", run_id="t")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")}
    return env | {"GOVLAKE_VAR": str(settings.var), "GOVLAKE_INBOX": str(settings.inbox)}


def _process(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``govlake ARGS`` through its entry point, in a process of its own (more environment in ``env``)."""
    return subprocess.run([sys.executable, "-m", "govlake.cli", *args], capture_output=True, text=True,
                          env=_env(settings) | env, timeout=120)


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """``govlake ARGS`` in this process (faster than a process per command), on ``settings``' lake."""
    for key, value in _env(settings).items():
        if key.startswith("GOVLAKE_"):
            monkeypatch.setenv(key, value)
    return lambda *args: CliRunner().invoke(app, list(args))


def _steps(settings: Settings, resource: str) -> list[tuple]:
    return [(r["step"], r["action"], r["state"], r["department"], r["mounted_table"], r["actor"], r["reason"],
             r["seeded"]) for r in claim_history(settings, resource)]


def test_claim_mount_unmount_release_through_the_cli_are_recorded_with_who_when_and_why(settings, cli):
    _silver(settings, "tax_credit_rating", 2)
    before = dt.datetime.now(dt.UTC)
    for args in (("claim", "--by", "tax-wang", "--why", "本局负责纳税信用评价"),
                 ("mount", "--by", "tax-li", "--why", "数据已入湖"),
                 ("unmount", "--by", "tax-li", "--why", "表结构调整"),
                 ("release", "--by", "tax-wang", "--why", "职责划转")):
        out = cli("catalog", args[0], "tax.credit_rating", "--dept", "tax", *args[1:], "--json")
        assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["state"] == "unclaimed"
    after = dt.datetime.now(dt.UTC)

    rows = claim_history(settings, "tax.credit_rating")
    assert _steps(settings, "tax.credit_rating") == [
        (1, "claim", "claimed", "tax", None, "tax-wang", "本局负责纳税信用评价", False),
        (2, "mount", "mounted", "tax", "silver/tax_credit_rating", "tax-li", "数据已入湖", False),
        (3, "unmount", "claimed", "tax", "silver/tax_credit_rating", "tax-li", "表结构调整", False),
        (4, "release", "unclaimed", "tax", None, "tax-wang", "职责划转", False),
    ]
    assert [r["previous_state"] for r in rows] == ["unclaimed", "claimed", "mounted", "claimed"]
    assert all(before <= r["at"] <= after for r in rows) and rows == sorted(rows, key=lambda r: r["at"])
    # the first recorded step wrote the YAML's seeded claims into the history, as such
    stored = storage.open_table(storage.table_path(settings, "meta", "catalog_claims_history")).to_pyarrow_table()
    seeded = [r for r in stored.to_pylist() if r["seeded"]]
    # (claimed_by/claimed_on, then mounted_on: the seeded mount of silver/<slug>; amr.enterprise has none)
    assert sorted((r["resource"], r["action"], r["department"], r["actor"], r["at"], r["mounted_table"])
                  for r in seeded) == [
        ("amr.enterprise", "claim", "amr", "catalog", _utc("2024-01-22T00:00"), None),
        ("credit.license", "claim", "credit", "catalog", _utc("2024-01-19T00:00"), None),
        ("credit.license", "mount", "credit", "catalog", _utc("2024-01-29T00:00"), "silver/credit_license"),
        ("credit.penalty", "claim", "credit", "catalog", _utc("2024-01-19T00:00"), None),
        ("credit.penalty", "mount", "credit", "catalog", _utc("2024-01-29T00:00"), "silver/credit_penalty"),
        ("hrss.social_insurance", "claim", "hrss", "catalog", _utc("2024-02-06T00:00"), None),
        ("hrss.social_insurance", "mount", "hrss", "catalog", _utc("2024-02-20T00:00"),
         "silver/hrss_social_insurance"),
        ("psb.population", "claim", "psb", "catalog", _utc("2024-01-26T00:00"), None),
        ("psb.population", "mount", "psb", "catalog", _utc("2024-02-05T00:00"), "silver/psb_population"),
    ]
    current = {r["resource"]: r for r in storage.open_table(
        storage.table_path(settings, "meta", "catalog_claims")).to_pyarrow_table().to_pylist()}
    assert (current["tax.credit_rating"]["state"], current["tax.credit_rating"]["steps"],
            current["tax.credit_rating"]["updated_by"]) == ("unclaimed", 4, "tax-wang")
    assert (current["amr.enterprise"]["state"], current["amr.enterprise"]["department"]) == ("claimed", "amr")

    listed = cli("catalog", "claims", "--json")
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    states = {c["resource"]: (c["state"], c["department"]) for c in doc["current"]}
    assert all(set(c) == set(doc["current"][0]) for c in doc["current"])  # the same keys, claimed or never
    assert states["tax.credit_rating"] == ("unclaimed", None) and states["court.dishonest"] == ("unclaimed", None)
    assert states["psb.population"] == ("mounted", "psb") and len(states) == 8
    assert [r["action"] for r in doc["history"] if r["resource"] == "tax.credit_rating"] == [
        "claim", "mount", "unmount", "release"]
    assert doc["warnings"] == []


REFUSED = [
    (("claim", "amr.enterprise", "--dept", "tax"), "cannot claim amr.enterprise: it is claimed by amr since "
                                                   "2024-01-22; amr releases it first"),
    (("mount", "court.dishonest", "--dept", "court"), "cannot mount court.dishonest: it is unclaimed; court claims "
                                                      "it first"),
    (("mount", "amr.enterprise", "--dept", "psb"), "cannot mount amr.enterprise for psb: it is claimed by amr; only "
                                                   "the claiming department mounts, unmounts or releases it"),
    (("claim", "court.dishonest", "--dept", "moon"), "unknown department 'moon'; departments "
                                                     "(catalog/departments.yml): amr, court,"),
    # the same refusals, the rest in this process (a process each is slow)
    (("unmount", "amr.enterprise", "--dept", "amr"), "cannot unmount amr.enterprise: it is claimed by amr but not "
                                                     "mounted"),
    (("release", "court.dishonest", "--dept", "court"), "cannot release court.dishonest: it is not claimed"),
    (("claim", "amr.nothing", "--dept", "amr"), "no resource 'amr.nothing' in the catalog; try `govlake catalog "
                                                "search amr.nothing`"),
    (("mount", "amr.enterprise", "--dept", "amr"), "silver/amr_enterprise does not exist yet: nothing to mount"),
    (("mount", "amr.enterprise", "--dept", "amr", "--table", "../bronze/x"), "--table '../bronze/x': give a "
                                                                               "silver table as silver/<name>"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED[:4])
def test_illegal_steps_are_refused_with_a_clear_message_and_exit_code_1(settings, args, message):
    out = _process(settings, "catalog", *args, "--by", "someone", "--why", "test")
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("error: ") and message in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert storage.open_table(storage.table_path(settings, "meta", "catalog_claims_history")) is None


@pytest.mark.parametrize(("args", "message"), REFUSED[4:])
def test_more_illegal_steps_are_refused(settings, cli, args, message):
    out = cli("catalog", *args, "--by", "someone", "--why", "test", "--json")
    assert out.exit_code == 1, out.output
    assert message in " ".join(out.stderr.split()) and message in json.loads(out.stdout)["error"]
    assert storage.open_table(storage.table_path(settings, "meta", "catalog_claims_history")) is None


def test_who_and_why_are_required_and_a_mounted_resource_is_unmounted_before_release(settings, cli):
    out = cli("catalog", "claim", "court.dishonest", "--dept", "court", "--by", "court-1")
    assert out.exit_code == 1 and "--why is required" in out.stderr
    _silver(settings, "amr_enterprise", 1)
    claim_step("mount", "amr.enterprise", settings=settings, department="amr", by="amr-1", reason="挂载", run_id="r")
    with pytest.raises(ClaimError, match="it is mounted by amr; amr unmounts it first"):
        claim_step("release", "amr.enterprise", settings=settings, department="amr", by="amr-1", reason="x",
                   run_id="r")
    with pytest.raises(ClaimError, match="already mounted on silver/amr_enterprise by amr; unmount it first"):
        claim_step("mount", "amr.enterprise", settings=settings, department="amr", by="amr-1", reason="x",
                   run_id="r")
    with pytest.raises(ClaimError, match="claimed and mounted by amr since .*; amr unmounts and releases it first"):
        claim_step("claim", "amr.enterprise", settings=settings, department="psb", by="psb-1", reason="x",
                   run_id="r")
    assert [s[1] for s in _steps(settings, "amr.enterprise")] == ["claim", "mount"]


def test_a_yaml_claim_the_history_contradicts_is_a_validate_warning(settings, cli):
    claim_step("unmount", "hrss.social_insurance", settings=settings, department="hrss", by="hrss-1",
               reason="职责调整", run_id="r", now=_utc("2026-11-08T01:00"))   # its seeded mount (mounted_on)
    claim_step("release", "hrss.social_insurance", settings=settings, department="hrss", by="hrss-1",
               reason="职责调整", run_id="r", now=_utc("2026-11-08T02:00"))
    out = cli("catalog", "validate", "--json")
    assert out.exit_code == 0, out.output
    expected = ("catalog/resources/hrss.social_insurance.yml: claimed_by: hrss, but the claim history "
                "(meta/catalog_claims_history) says it is unclaimed since 2026-11-08; the history counts — "
                "update the YAML")
    assert json.loads(out.stdout)["warnings"] == [expected]
    assert "warning: " + expected in " ".join(out.stderr.split())


def _kpi(settings: Settings, kpi_id: str, as_of: str) -> dict[str, tuple]:
    day = dt.date.fromisoformat(as_of)
    kpi = next(k for k in sharing_kpis(Settings(var=settings.var, inbox=settings.inbox, as_of=day))
               if k.id == kpi_id)
    assert {v.period for v in kpi.values} == {f"as of {as_of}"}
    return {v.scope: (v.numerator, v.denominator) for v in kpi.values}


def test_claim_and_mount_rates_follow_the_history_as_of_their_date(settings):
    _silver(settings, "tax_credit_rating", 2)
    _silver(settings, "amr_enterprise", 3)
    _silver(settings, "psb_population", 0)          # mounted but empty: not counted
    _silver(settings, "credit_penalty", 1)
    for action, code, dept, at in (
            ("mount", "amr.enterprise", "amr", "2026-11-03T01:00"),
            ("claim", "tax.credit_rating", "tax", "2026-11-05T01:00"),
            ("mount", "tax.credit_rating", "tax", "2026-11-06T01:00"),
            ("unmount", "hrss.social_insurance", "hrss", "2026-11-08T00:30"),
            ("release", "hrss.social_insurance", "hrss", "2026-11-08T01:00"),
            ("unmount", "credit.penalty", "credit", "2026-11-10T01:00"),
            ("claim", "court.dishonest", "court", "2026-11-12T17:00")):   # Beijing 11-13 01:00
        claim_step(action, code, settings=settings, department=dept, by=f"{dept}-01", reason=action, run_id="k",
                   now=_utc(at))

    # 8 resources: amr, court, credit ×3, hrss, psb, tax.  Seeded claims (2024): amr, credit.license,
    # credit.penalty, hrss, psb → 5/8 until tax claims on 11-05; hrss releases on 11-08; court's claim
    # is on 11-13 Beijing time
    assert _kpi(settings, "sharing.claim_rate", "2026-11-01") == {
        "all": (5, 8), "amr": (1, 1), "court": (0, 1), "credit": (2, 3), "hrss": (1, 1), "psb": (1, 1), "tax": (0, 1)}
    assert _kpi(settings, "sharing.claim_rate", "2026-11-05")["all"] == (6, 8)
    assert _kpi(settings, "sharing.claim_rate", "2026-11-12") == {
        "all": (5, 8), "amr": (1, 1), "court": (0, 1), "credit": (2, 3), "hrss": (0, 1), "psb": (1, 1), "tax": (1, 1)}
    assert _kpi(settings, "sharing.claim_rate", "2026-11-13")["all"] == (6, 8)
    # seeded mounts (mounted_on, 2024): credit.license and hrss (no silver table), credit.penalty (a row),
    # psb (empty table). Mounted with rows: 11-01 credit.penalty; 11-05 credit.penalty, amr (psb's table is
    # empty, tax mounts on 11-06); 11-12 amr, tax (credit.penalty unmounted on 11-10)
    assert _kpi(settings, "sharing.mount_rate", "2026-11-01") == {
        "all": (1, 8), "amr": (0, 1), "court": (0, 1), "credit": (1, 3), "hrss": (0, 1), "psb": (0, 1), "tax": (0, 1)}
    assert _kpi(settings, "sharing.mount_rate", "2026-11-05") == {
        "all": (2, 8), "amr": (1, 1), "court": (0, 1), "credit": (1, 3), "hrss": (0, 1), "psb": (0, 1), "tax": (0, 1)}
    assert _kpi(settings, "sharing.mount_rate", "2026-11-12") == {
        "all": (2, 8), "amr": (1, 1), "court": (0, 1), "credit": (0, 3), "hrss": (0, 1), "psb": (0, 1), "tax": (1, 1)}
    _silver(settings, "psb_population", 4)          # the data arrives: psb's earlier mount counts now
    assert _kpi(settings, "sharing.mount_rate", "2026-11-12")["psb"] == (1, 1)


def test_two_concurrent_claims_of_one_resource_do_not_both_win(settings):
    """Two processes claim tax.credit_rating while this test holds the claims lock; both wait for it
    (each says so on stderr), then race for it once it is free: one wins, the other is refused."""
    settings.var.mkdir(parents=True, exist_ok=True)
    with locks.hold(settings, locks.CLAIMS, timeout=5):
        procs = [subprocess.Popen([sys.executable, "-m", "govlake.cli", "catalog", "claim", "tax.credit_rating",
                                   "--dept", dept, "--by", f"{dept}-01", "--why", "认领"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(settings))
                 for dept in ("tax", "amr")]
        waiting = [p.stderr.readline() for p in procs]  # blocks until each is at the lock (or has ended)
    assert all(w.startswith("waiting for lock claims, held by ") for w in waiting), waiting
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], outs
    winner = ("tax", "amr")[codes.index(0)]
    assert outs[codes.index(0)][0] == f"tax.credit_rating: claimed by {winner} (claim recorded, step 1)\n"
    assert f"error: cannot claim tax.credit_rating: it is claimed by {winner} since" in outs[codes.index(1)][1]
    assert [(s[1], s[3]) for s in _steps(settings, "tax.credit_rating")] == [("claim", winner)]


def test_a_claim_killed_after_its_history_commit_is_finished_by_the_next_step(settings):
    killed = _process(settings, "catalog", "claim", "tax.credit_rating", "--dept", "tax", "--by", "tax-01", "--why",
                      "认领", GOVLAKE_CRASH_AT="catalog_claims:meta/catalog_claims_history")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert storage.open_table(storage.table_path(settings, "meta", "catalog_claims")) is None
    _silver(settings, "tax_credit_rating", 1)
    claim_step("mount", "tax.credit_rating", settings=settings, department="tax", by="tax-02", reason="挂载",
               run_id="m")
    assert [(s[1], s[5]) for s in _steps(settings, "tax.credit_rating")] == [("claim", "tax-01"), ("mount", "tax-02")]
    current = {r["resource"]: r for r in storage.open_table(
        storage.table_path(settings, "meta", "catalog_claims")).to_pyarrow_table().to_pylist()}
    assert (current["tax.credit_rating"]["state"], current["tax.credit_rating"]["steps"]) == ("mounted", 2)


def test_the_report_shows_the_claim_and_mount_kpis_and_the_latest_steps_masked(settings):
    from govlake.catalog import get_catalog
    from govlake.contracts import silver_schema
    from govlake.report import build_report
    from govlake.report._claims import claims_section
    from test_conflicts import RECEIVED, TAX

    assert 'id="claims-none"' in claims_section(claim_history(settings))  # seeded claims only: no step yet
    # one row of tax.credit_rating in silver as standardize writes it (the report reads the table)
    res = get_catalog(settings.catalog_dir).resource("tax.credit_rating")
    schema = silver_schema(res).append(pa.field("_dept", pa.string()))
    row = TAX[0] | {"_source": "t.csv", "_row_number": 1, "_batch_id": "b", "_received_at": RECEIVED, "_dept": "tax"}
    storage.write_table(storage.table_path(settings, "silver", res.slug), pa.Table.from_pylist([row], schema=schema),
                        mode="overwrite", run_id="t")
    for action, at in (("claim", "2026-11-10T01:00"), ("mount", "2026-11-11T01:00")):
        claim_step(action, "tax.credit_rating", settings=settings, department="tax", by="tax-01",
                   reason=f"{action} 联系 13800138000", run_id="r", now=_utc(at))
    day = Settings(var=settings.var, inbox=settings.inbox, as_of=dt.date(2026, 11, 20))
    html = build_report(day, pdf=False).path.read_text(encoding="utf-8")
    # 6 of 8 claimed (5 seeded + tax); 1 of 8 mounted (tax, with a row)
    assert ('data-kpi="sharing.claim_rate" data-scope="all" data-period="as of 2026-11-20" data-value="0.75"'
            in html)
    assert ('data-kpi="sharing.mount_rate" data-scope="all" data-period="as of 2026-11-20" data-value="0.125"'
            in html)
    table = html[html.index('id="claims-table"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 3 and "13800138000" not in html  # header + two steps; the phone masked
    assert table.index("mount 联系 138****8000") < table.index("claim 联系 138****8000")  # latest first
    assert '<a href="tables/tax.credit_rating.html">tax.credit_rating</a>' in table
