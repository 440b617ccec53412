"""Alerts: a small lake with one overdue feed, one volume drop, one held batch, one failed reconciliation and
one late 双公示 record; `govlake alerts check` stores one alert each and sends it once to a real webhook
(http.server on 127.0.0.1) and a real mailbox (aiosmtpd on 127.0.0.1); a second check sends nothing; ack and
resolve are recorded; a down webhook is a recorded failed delivery, a nonzero exit, and is caught up later."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest
from aiosmtpd.controller import Controller
from deltalake import DeltaTable
from typer.testing import CliRunner

from govlake import contracts, storage
from govlake.catalog import CatalogError, load_catalog
from govlake.cli import app
from govlake.config import Settings, SettingsError, alert_channels
from govlake.quality._batches import REJECTED, find, record_decision
from govlake.report._alerts import alert_section, load_alerts

runner = CliRunner()
TODAY = dt.date(2026, 11, 20)  # a Friday; the day before is a working day
BEIJING = dt.timezone(dt.timedelta(hours=8))
HELD_FILE = "inbox/credit/penalty/370102199001011234_补报.csv"
"""A clerk named the file after a person's 身份证号: it must not reach an alert unmasked."""
KINDS = {"late_feed", "volume_drop", "held_batch", "reconciliation", "publicity_late"}


def _at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), BEIJING).astimezone(dt.UTC)


def _write(settings: Settings, layer: str, name: str, rows: list[dict], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)
    storage.write_table(storage.table_path(settings, layer, name), table, mode="append", run_id="fixture")


def _landed(resource: str, day: str, rows: int, batch: str) -> dict:
    return {"run_id": "fixture", "batch_id": batch, "resource": resource, "source": f"inbox/{batch}.csv",
            "rows": rows, "status": "landed", "received_at": _at(day)}


def build_lake(settings: Settings) -> None:
    """Every feed landed yesterday, except credit.repair (last on 11-10: due 11-11, 9 days overdue); amr's
    latest credit.license file has 10 rows against a median of 105 (tax's files always 5); one credit.penalty
    batch is held; court.dishonest's latest reconciliation did not balance; one penalty decision of amr was
    submitted 8 days after its deadline."""
    catalog = load_catalog(settings.catalog_dir)
    log = [_landed(code, "2026-11-19", 50, f"b-{code}") for code in catalog.resources
           if code not in ("credit.repair", "credit.license")]
    log.append(_landed("credit.repair", "2026-11-10", 40, "b-repair"))
    log.append({"run_id": "fixture", "batch_id": "b-repair-bad", "resource": "credit.repair", "source": "x.csv",
                "rows": 0, "status": "rejected", "received_at": _at("2026-11-19")})  # rejected: not a delivery
    for day, rows in [("2026-11-15", 100), ("2026-11-16", 120), ("2026-11-17", 110), ("2026-11-18", 90),
                      ("2026-11-19", 10)]:  # amr's daily file, and tax's, always 5 rows, landed after it
        stamp = day.replace("-", "")
        log.append(dict(_landed("credit.license", day, rows, f"b-amr-{stamp}"),
                        source=f"inbox/credit/license/amr_{stamp}.csv"))
        log.append(dict(_landed("credit.license", day, 5, f"b-tax-{stamp}"), received_at=_at(day, 11),
                        source=f"inbox/credit/license/tax_{stamp}.csv"))
    _write(settings, "meta", "ingest_log", log, contracts.INGEST_LOG)
    _write(settings, "meta", "batches", [
        {"batch_id": "b-held", "resource": "credit.penalty", "source": HELD_FILE, "rows": 12, "quarantined": 12,
         "status": "held", "rules": json.dumps([{"rule": "format.decision_date", "rows": 8, "first_row": 2}]),
         "limit_rate": 0.5, "at": _at("2026-11-19"), "run_id": "r2"}], contracts.BATCHES)
    recon = {"rows_read": 10, "silver": 10, "quarantined": 0, "duplicates": 0, "held": 0, "rejected": 0,
             "published": True}
    _write(settings, "meta", "reconciliation", [
        dict(recon, run_id="r1", resource="credit.penalty", balanced=True, checked_at=_at("2026-11-19")),
        dict(recon, run_id="r1", resource="court.dishonest", balanced=True, checked_at=_at("2026-11-18")),
        dict(recon, run_id="r2", resource="court.dishonest", balanced=False, silver=9, checked_at=_at("2026-11-19"),
             note="rows read 10 ≠ silver 9 + quarantined 0 + duplicates 0")], contracts.RECONCILIATION)
    schema = pa.schema([("decision_no", pa.string()), ("authority_uscc", pa.string()), ("_dept", pa.string()),
                        ("deadline_date", pa.date32()), ("submission_time", pa.timestamp("us")),
                        ("on_time", pa.bool_())])
    d = dt.date.fromisoformat
    _write(settings, "gold", "penalty_record", [
        {"decision_no": "济市监罚〔2026〕1号", "_dept": "amr", "deadline_date": d("2026-10-10"),
         "submission_time": dt.datetime(2026, 10, 9, 9), "on_time": True},
        {"decision_no": "济市监罚〔2026〕2号", "_dept": "amr", "deadline_date": d("2026-10-12"),
         "submission_time": dt.datetime(2026, 10, 20, 9), "on_time": False},
        {"decision_no": "济市监罚〔2026〕3号", "_dept": "amr", "deadline_date": d("2026-11-25"),
         "submission_time": dt.datetime(2026, 11, 19, 9), "on_time": True}], schema)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """A real HTTP endpoint on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/govlake?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def __init__(self) -> None:
        self.messages: list = []


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def lake(env, tmp_path: Path, mailbox) -> Settings:
    settings = Settings(var=tmp_path / "var")
    build_lake(settings)
    env.setenv("GOVLAKE_AS_OF", TODAY.isoformat())
    env.setenv("GOVLAKE_ALERT_SMTP_HOST", "127.0.0.1")
    env.setenv("GOVLAKE_ALERT_SMTP_PORT", str(mailbox[1]))
    env.setenv("GOVLAKE_ALERT_SMTP_SECURITY", "none")
    env.setenv("GOVLAKE_ALERT_EMAIL_TO", "ops@dsj.example.cn")
    return settings


def _table(settings: Settings, name: str) -> list[dict]:
    return DeltaTable(str(settings.lake / "meta" / name)).to_pyarrow_table().to_pylist()


def _check(*extra: str):
    return runner.invoke(app, ["alerts", "check", *extra])


def test_each_condition_is_one_alert_sent_once_to_the_webhook_and_the_mailbox(lake, webhook, mailbox, env):
    env.setenv("GOVLAKE_ALERT_WEBHOOK_URL", webhook.url)
    out = _check()
    assert out.exit_code == 0, out.output
    assert "5 new, 0 still present, 0 cleared" in out.output

    kinds = sorted(p["kind"] for p in webhook.received)
    assert kinds == sorted(KINDS)
    by_kind = {p["kind"]: p for p in webhook.received}
    assert by_kind["late_feed"]["resource"] == "credit.repair"
    assert by_kind["late_feed"]["evidence"]["days_overdue"] == 9 and by_kind["late_feed"]["department"] == "credit"
    assert by_kind["volume_drop"]["resource"] == "credit.license"
    drop = by_kind["volume_drop"]["evidence"]  # amr's file against amr's: tax's small files are its usual volume
    assert drop["median"] == 105 and drop["rows"] == 10 and drop["file"] == "amr_#.csv"
    assert drop["batch_id"] == "b-amr-20261119"
    assert by_kind["reconciliation"]["resource"] == "court.dishonest" and by_kind["reconciliation"]["severity"] == (
        "critical")
    assert by_kind["publicity_late"]["department"] == "amr"
    assert by_kind["publicity_late"]["evidence"]["examples"] == ["济市监罚〔2026〕2号"]
    held = by_kind["held_batch"]
    assert "370102199001011234" not in json.dumps(held, ensure_ascii=False)  # masked, message and evidence
    assert "370102********1234_补报.csv" in held["message_zh"] and "批次" in held["message_zh"]

    box = mailbox[0]
    assert len(box.messages) == 5
    subjects = " ".join(m["Subject"] for m in box.messages)
    assert "数据未按更新周期报送" in subjects and "双公示逾期报送" in subjects
    assert all(m["To"] == "ops@dsj.example.cn" for m in box.messages)
    assert not any("370102199001011234" in m.get_content() for m in box.messages)

    stored = _table(lake, "alerts")
    assert sorted(a["kind"] for a in stored) == sorted(KINDS) and {a["state"] for a in stored} == {"open"}
    deliveries = _table(lake, "alert_deliveries")
    assert len(deliveries) == 10 and all(d["ok"] for d in deliveries)
    assert {d["target"] for d in deliveries} == {webhook.url.split("/hooks")[0], f"smtp://127.0.0.1:{mailbox[1]}"}
    assert not any("s3cret" in str(d) for d in deliveries)  # the webhook's token is never stored

    again = _check()
    assert again.exit_code == 0, again.output
    assert "0 new, 5 still present, 0 cleared" in again.output
    assert len(webhook.received) == 5 and len(box.messages) == 5  # nothing sent twice
    assert len(_table(lake, "alerts")) == 5
    history = _table(lake, "alerts_history")
    assert sorted(r["action"] for r in history) == ["raise"] * 5 + ["seen"] * 5


def test_ack_and_resolve_are_recorded_and_a_cleared_condition_is_resolved_by_the_check(lake, env):
    assert _check().exit_code == 0
    ids = {a["kind"]: a["alert_id"] for a in _table(lake, "alerts")}

    out = runner.invoke(app, ["alerts", "ack", ids["late_feed"], "--by", "王值班", "--why", "已电话联系信用中心补报"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["alerts", "resolve", ids["publicity_late"], "--by", "王值班", "--why", "已通报该部门"])
    assert out.exit_code == 0, out.output
    again = runner.invoke(app, ["alerts", "ack", ids["publicity_late"], "--by", "王值班", "--why", "x"])
    assert again.exit_code == 1 and "is resolved: cannot ack" in again.output
    missing = runner.invoke(app, ["alerts", "ack", ids["held_batch"], "--by", " ", "--why", "x"])
    assert missing.exit_code == 1 and "--by and --why are required" in missing.output

    # the operator rejects the held batch: the next check resolves its alert itself
    record_decision(lake, find(lake, "b-held"), status=REJECTED, reason="部门确认导出错误", by="李审核", run_id="r3")
    out = _check()
    assert out.exit_code == 0, out.output
    assert "0 new, 3 still present, 1 cleared" in out.output  # the resolved 双公示 alert is not reopened

    alerts = {a["kind"]: a for a in _table(lake, "alerts")}
    late = alerts["late_feed"]
    assert late["state"] == "acknowledged" and late["acknowledged_by"] == "王值班"
    assert late["acknowledged_why"] == "已电话联系信用中心补报" and late["acknowledged_at"] is not None
    assert alerts["publicity_late"]["state"] == "resolved" and alerts["publicity_late"]["resolved_by"] == "王值班"
    assert alerts["held_batch"]["state"] == "resolved" and alerts["held_batch"]["resolved_by"] == "govlake"
    assert alerts["held_batch"]["resolved_why"].startswith("cleared")
    section = alert_section(load_alerts(lake))  # the auditor's report: the open and acknowledged ones
    assert section.count('<tr') == 1 + 3 and alerts["late_feed"]["alert_id"] in section
    assert "已电话联系信用中心补报" in section and alerts["held_batch"]["alert_id"] not in section
    assert 'id="alerts-none"' in alert_section([])
    listed = runner.invoke(app, ["alerts", "list", "--json"])
    assert {a["kind"] for a in json.loads(listed.stdout)} == {"late_feed", "volume_drop", "reconciliation"}
    # `govlake status` counts the open and acknowledged ones and points at `alerts list`
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    live = json.loads(status.stdout)["open_alerts"]
    assert sorted((a["kind"], a["state"]) for a in live) == [
        ("late_feed", "acknowledged"), ("reconciliation", "open"), ("volume_drop", "open")]
    said = " ".join(runner.invoke(app, ["status"]).output.split())
    assert "alerts: 3 open or acknowledged (1 critical; late_feed 1, reconciliation 1, volume_drop 1)" in said
    assert "govlake alerts list" in said
    steps = [(r["action"], r["actor"]) for r in _table(lake, "alerts_history") if r["alert_id"] == ids["late_feed"]]
    assert sorted(steps) == [("ack", "王值班"), ("raise", "govlake"), ("seen", "govlake")]


def test_a_down_webhook_is_a_failed_delivery_and_a_nonzero_exit_and_is_caught_up_later(lake, mailbox, env):
    env.setenv("GOVLAKE_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{_free_port()}/hook")  # nothing listens there
    out = _check()
    assert out.exit_code == 1, out.output
    assert "webhook" in out.output and "the next check sends it again" in out.output
    assert len(_table(lake, "alerts")) == 5  # stored all the same
    failed = [d for d in _table(lake, "alert_deliveries") if not d["ok"]]
    assert len(failed) == 5 and {d["channel"] for d in failed} == {"webhook"}
    assert all("refused" in d["error"].lower() for d in failed), failed[0]["error"]
    assert len(mailbox[0].messages) == 5  # the other channel is not held up

    hook = Webhook()
    try:
        env.setenv("GOVLAKE_ALERT_WEBHOOK_URL", hook.url)
        out = _check()
        assert out.exit_code == 0, out.output
        assert sorted(p["kind"] for p in hook.received) == sorted(KINDS)  # caught up, once each
        assert len(mailbox[0].messages) == 5  # the mailbox had them already
    finally:
        hook.close()


def test_the_deployment_example_configures_no_channel_and_refuses_nothing():
    """infra/deploy/govlake.env.example as the deployment reads it (empty means unset): no channel, no error."""
    example = Path(__file__).resolve().parents[1] / "infra" / "deploy" / "govlake.env.example"
    values = {}
    for line in example.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#") and key.startswith("GOVLAKE_ALERT_") and value:
            values[key] = value
    assert alert_channels(values).names == ()
    assert alert_channels({"GOVLAKE_ALERT_SMTP_PORT": "587", "GOVLAKE_ALERT_SMTP_SECURITY": "ssl"}).names == ()


@pytest.mark.parametrize(("variables", "problem"), [
    ({"GOVLAKE_ALERT_WEBHOOK_URL": "ftp://hooks.example.cn/x"}, "GOVLAKE_ALERT_WEBHOOK_URL"),
    ({"GOVLAKE_ALERT_SMTP_HOST": "mail.example.cn"}, "GOVLAKE_ALERT_EMAIL_TO"),
    ({"GOVLAKE_ALERT_EMAIL_TO": "ops@example.cn"}, "need GOVLAKE_ALERT_SMTP_HOST"),
    ({"GOVLAKE_ALERT_SMTP_HOST": "mail.example.cn", "GOVLAKE_ALERT_EMAIL_TO": "ops"}, "not an e-mail address"),
    ({"GOVLAKE_ALERT_SMTP_HOST": "mail.example.cn", "GOVLAKE_ALERT_EMAIL_TO": "a@b.cn",
      "GOVLAKE_ALERT_SMTP_PORT": "70000"}, "GOVLAKE_ALERT_SMTP_PORT"),
    ({"GOVLAKE_ALERT_SMTP_HOST": "mail.example.cn", "GOVLAKE_ALERT_EMAIL_TO": "a@b.cn",
      "GOVLAKE_ALERT_SMTP_USER": "ops", "GOVLAKE_ALERT_SMTP_PASSWORD": "Secr3t!",
      "GOVLAKE_ALERT_SMTP_SECURITY": "none"}, "unencrypted"),
])
def test_bad_channel_settings_are_refused_by_name_without_secrets(variables, problem):
    with pytest.raises(SettingsError, match=problem) as err:
        alert_channels(variables)
    assert "Secr3t!" not in str(err.value)  # a password is never shown


def test_bad_thresholds_name_the_file_and_line(tmp_path):
    catalog = tmp_path / "catalog"
    repo = Path(__file__).resolve().parents[1] / "catalog"
    shutil.copytree(repo, catalog)
    (catalog / "defaults.yml").write_text("alerts:\n  volume_history: 2\n  volume_min_history: 3\n"
                                          "  volume_drop_below: 1.5\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog)
    text = str(err.value)
    assert "defaults.yml:4:22: alerts.volume_drop_below" in text and "less than or equal to 1" in text


def test_airflow_callbacks_raise_task_failed_and_run_overdue_alerts_once(lake, webhook, env):
    """What the DAGs' failure callback and deadline alert do with the context Airflow hands them."""
    from types import SimpleNamespace

    from govlake.orchestration import deadline_missed, on_task_failure

    env.setenv("GOVLAKE_ALERT_WEBHOOK_URL", webhook.url)
    ti = SimpleNamespace(dag_id="feed_credit_penalty", task_id="process", run_id="scheduled__2026-11-20",
                         try_number=3, task=SimpleNamespace(owner="credit"))
    error = ValueError("row 7: 身份证号 370102199001011234 does not parse")
    for _ in range(2):  # a second call (the same failure reported again) is the same alert, not sent again
        on_task_failure({"ti": ti, "exception": error}, resource="credit.penalty")
    deadline_missed({"dag_run": {"dag_id": "feed_credit_penalty", "dag_run_id": "scheduled__2026-11-20",
                                 "state": "running"}, "deadline": {"id": "d1", "deadline_time": "2026-11-20T03:00Z"}},
                    resource="credit.penalty", owner="credit")
    assert [p["kind"] for p in webhook.received] == ["task_failed", "run_overdue"]
    failed = webhook.received[0]
    assert failed["resource"] == "credit.penalty" and failed["department"] == "credit"
    assert "370102********1234" in failed["message_en"] and "370102199001011234" not in json.dumps(failed)
    stored = {a["kind"]: a for a in _table(lake, "alerts")}
    assert set(stored) == {"task_failed", "run_overdue"}
    # the check does not resolve what it does not detect: a failed task stays open until someone resolves it
    assert _check().exit_code == 0
    assert {a["kind"]: a["state"] for a in _table(lake, "alerts")}["task_failed"] == "open"


def test_thresholds_come_from_defaults_yml(lake, tmp_path):
    """Nine days overdue is not late with late_after_days 9; 10 rows against a median of 105 is no drop below 5%;
    a deadline 39 days back is outside a 30-day lookback."""
    from govlake.alerts import detect

    catalog = tmp_path / "catalog"
    shutil.copytree(Path(__file__).resolve().parents[1] / "catalog", catalog)
    assert {c.kind for c in detect(dataclasses.replace(lake, as_of=TODAY), load_catalog(catalog))} == KINDS
    (catalog / "defaults.yml").write_text("alerts: {late_after_days: 9, volume_drop_below: 0.05, "
                                          "publicity_lookback_days: 30}\n", encoding="utf-8")
    found = detect(dataclasses.replace(lake, as_of=TODAY), load_catalog(catalog))
    assert {c.kind for c in found} == {"held_batch", "reconciliation"}


def test_the_report_overview_lists_open_alerts_masked_and_as_text(tmp_path):
    """The auditor's report of a lake holding one alert: its section on the overview, the ID number masked,
    markup in a message shown as text."""
    from govlake.alerts import Condition, raise_alert
    from govlake.report import build_report

    settings = Settings(var=tmp_path / "var", as_of=TODAY)
    raise_alert(settings, Condition("task_failed", "task_failed:feed_credit_penalty:process:r9", "critical",
                                    "调度任务 <b>process</b> 失败：370102199001011234", "Airflow task process failed",
                                    "credit.penalty", "credit"), run_id="r9")
    overview = Path(build_report(settings, pdf=False).path).read_text(encoding="utf-8")
    assert 'id="alerts-count" data-open="1"' in overview and 'id="alerts-table"' in overview
    assert "370102199001011234" not in overview and "370102********1234" in overview
    assert "<b>process</b>" not in overview and "&lt;b&gt;process&lt;/b&gt;" in overview


@pytest.mark.slow
def test_a_batch_the_pipeline_holds_is_found_and_cleared_when_released(tmp_path, monkeypatch):
    """The real process step holds a garbage file (meta/batches and meta/reconciliation as it writes them): the
    check finds exactly that batch and a balanced reconciliation; once released and published, the alert clears."""
    from _bronze import write_bronze
    from govlake.alerts import detect
    from govlake.catalog import get_catalog
    from govlake.quality import process_resource
    from govlake.quality._batches import RELEASED
    from test_quality import BASE, _rows

    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", as_of=TODAY)
    monkeypatch.setenv("GOVLAKE_ACTOR", "李审核")
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    garbage = [dict(BASE, decision_no=f"g{i}", decision_date="2026-13-45") for i in range(12)]
    write_bronze(settings, "credit.penalty", garbage, batch="b-garbage", source=HELD_FILE)
    process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    catalog = get_catalog(settings.catalog_dir)

    found = [c for c in detect(settings, catalog) if c.kind in ("held_batch", "reconciliation")]
    assert [(c.kind, c.dedup_key) for c in found] == [("held_batch", "held_batch:b-garbage")]
    assert found[0].evidence["rows"] == 12 and "370102199001011234" not in found[0].evidence_json
    record_decision(settings, find(settings, "b-garbage"), status=RELEASED, reason="部门确认数据无误", by="李审核",
                    run_id="r3")
    process_resource("credit.penalty", settings=settings, run_id="r4", today=TODAY)
    assert not [c for c in detect(settings, catalog) if c.kind in ("held_batch", "reconciliation")]
