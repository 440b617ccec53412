"""The command line's front: exit codes, ``--json`` on every command (errors too), progress on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from _bronze import write_bronze
from govlake import pipeline
from govlake.catalog import get_catalog
from govlake.cli import HELD, USAGE, app
from govlake.ingest import ingest_resource
from test_catalog_cli import _broken_catalog
from test_cli import WRONG, _penalty_csv, _row
from test_quality import BASE


def _invoke(tmp_path, monkeypatch, *args: str):
    """``govlake …`` in this process, with var/ and the inbox under tmp_path, on 2026-11-20."""
    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("GOVLAKE_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("GOVLAKE_AS_OF", "2026-11-20")
    monkeypatch.setenv("GOVLAKE_SOURCE_DB_URL", f"sqlite:///{tmp_path / 'no-such-registry.sqlite'}")
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def _doc(result) -> dict | list:
    """The one JSON document a command printed on stdout."""
    return json.loads(result.stdout)


# ---- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, said", [
    (["ingest"], "name a RESOURCE or pass --all"),
    (["restore"], "give one of --from DIR, --as-of TIME or --resume"),
    (["restore", "--as-of", "yesterday"], "--as-of 'yesterday': expected an ISO time"),
    (["restore", "--as-of", "2026-11-20T09:30", "--table", "silver/credit_penalty"],
     "--table and --backup go with --from DIR"),
    (["batches", "reject", "b-1"], "Missing option '--reason'"),
    (["status", "--no-such-option"], "No such option: --no-such-option"),
])
def test_bad_usage_exits_2_saying_why(tmp_path, monkeypatch, args, said):
    result = _invoke(tmp_path, monkeypatch, *args)
    assert result.exit_code == USAGE == 2, result.output
    assert said in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "var" / "lake").exists()


def test_the_help_lists_the_exit_codes():
    text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"}).output
    assert ("Exit codes: 0 success · 1 error (data or operation) · 2 bad usage or settings · 3 completed with "
            "batches held (run; ingest with processing)") in text


def test_ingest_with_processing_exits_3_when_it_holds_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_penalty_csv([_row(n, uscc=WRONG) for n in range(1, 5)]))  # every row quarantined: held

    result = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty", "--file", str(bad))

    assert result.exit_code == HELD == 3, result.output
    assert f"credit.penalty: landed 4 rows from {bad}" in result.stdout
    assert f"({bad}) held: 4 of 4 rows quarantined" in result.stdout
    assert "1 batch(es) held; nothing else was stopped" in result.stderr
    # the same file again lands nothing and holds nothing: exit 0
    again = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty", "--file", str(bad))
    assert again.exit_code == 0 and "skipped_already_ingested" in again.stdout


# ---- --json -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_json_through_ingest_batches_run_status_backup_and_drill(tmp_path, monkeypatch):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(_penalty_csv([_row(n) for n in range(1, 4)]))
    bad.write_bytes(_penalty_csv([_row(n, uscc=WRONG) for n in range(11, 15)]))

    landed = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty", "--file", str(good), "--file", str(bad),
                     "--json")
    assert landed.exit_code == 3, landed.output
    doc = _doc(landed)
    assert doc["exit_code"] == 3 and doc["run_id"].startswith("ingest-") and "error" not in doc
    (res,) = doc["resources"]
    assert [(b["source"], b["status"], b["rows"]) for b in res["batches"]] == [
        (str(good), "landed", 3), (str(bad), "landed", 4)]
    assert res["processed"]["run"]["silver"] == 3 and res["processed"]["run"]["held"] == 4
    (held,) = res["processed"]["held_batches"]
    assert held["source"] == str(bad) and held["rules"][0]["rule"] == "uscc.uscc"

    listed = _invoke(tmp_path, monkeypatch, "batches", "--json")
    assert listed.exit_code == 0 and [b["batch_id"] for b in _doc(listed)] == [held["batch_id"]]
    status = _invoke(tmp_path, monkeypatch, "status", "--json")
    assert [b["source"] for b in _doc(status)["held_batches"]] == [str(bad)]
    decided = _invoke(tmp_path, monkeypatch, "batches", "reject", held["batch_id"][:8], "--reason", "错误导出",
                      "--json")
    assert decided.exit_code == 0, decided.output
    assert (_doc(decided)["status"], _doc(decided)["reason"]) == ("rejected", "错误导出")

    ran = _invoke(tmp_path, monkeypatch, "run", "--json")
    assert ran.exit_code == 0, ran.output
    doc = _doc(ran)
    assert doc["exit_code"] == 0 and doc["held_batches"] == [] and doc["run_id"].startswith("run-")
    assert doc["resources"]["credit.penalty"]["rejected"] == 4
    assert os.path.exists(doc["extract"]) and doc["credit"]["as_of"] == "2026-11-20"

    backed = _invoke(tmp_path, monkeypatch, "backup", "--to", str(tmp_path / "backups"), "--json")
    assert backed.exit_code == 0, backed.output
    backup = _doc(backed)
    assert backup["tables"] > 3 and backup["copied"] > 0 and os.path.exists(backup["manifest"])
    drilled = _invoke(tmp_path, monkeypatch, "drill", "--from", str(tmp_path / "backups"), "--json")
    assert drilled.exit_code == 0, drilled.output
    assert (_doc(drilled)["passed"], _doc(drilled)["backup_id"]) == (True, backup["backup_id"])


def test_a_rejected_file_with_json(tmp_path, monkeypatch):
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    result = _invoke(tmp_path, monkeypatch, "ingest", "credit.penalty", "--file", str(broken), "--json")
    assert result.exit_code == 1
    doc = _doc(result)
    assert (doc["exit_code"], doc["error"]) == (1, "1 of 1 resources with a rejected source or failed")
    assert [(b["status"], b["error"]) for b in doc["resources"][0]["batches"]] == [
        ("rejected", f"{broken}: not a text file (it is a PNG image)")]
    # stderr says it as without --json; stdout holds the document only
    assert result.stderr.startswith(f"credit.penalty: rejected 0 rows from {broken}")


def test_errors_with_json_are_a_document_on_stdout_too(tmp_path, monkeypatch):
    unknown = _invoke(tmp_path, monkeypatch, "catalog", "show", "amr.nothing", "--json")
    assert unknown.exit_code == 1
    assert _doc(unknown) == {"error": "no resource 'amr.nothing' in the catalog; try `govlake catalog search "
                                      "amr.nothing`", "exit_code": 1}
    assert unknown.stderr.startswith("error: no resource 'amr.nothing'")
    monkeypatch.setenv("GOVLAKE_DUCKDB_MEMORY", "4")
    bad_setting = CliRunner().invoke(app, ["kpi", "--json"])
    assert bad_setting.exit_code == 2
    assert _doc(bad_setting)["exit_code"] == 2 and _doc(bad_setting)["error"].startswith("GOVLAKE_DUCKDB_MEMORY='4'")
    assert len(bad_setting.stderr.splitlines()) == 1


def test_catalog_validate_json(tmp_path, monkeypatch):
    good = _invoke(tmp_path, monkeypatch, "catalog", "validate", "--json")
    catalog = get_catalog()
    assert good.exit_code == 0 and _doc(good) == {"ok": True, "resources": len(catalog.resources),
                                                  "departments": len(catalog.departments),
                                                  "code_lists": len(catalog.code_lists), "warnings": []}
    env, expected = _broken_catalog(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    broken = CliRunner().invoke(app, ["catalog", "validate", "--json"])
    assert broken.exit_code == 1
    doc = _doc(broken)
    assert (doc["error"], doc["exit_code"]) == ("3 problems in the catalog", 1)
    assert [p.split(":")[0] for p in doc["problems"]] == [path for path, _, _ in expected]
    assert broken.stderr.splitlines()[-1] == "3 problems in the catalog"  # still said on stderr


def test_usage_errors_of_the_console_script_with_json(tmp_path):
    env = {**os.environ, "GOVLAKE_VAR": str(tmp_path / "var")}
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "batches", "reject", "b-1", "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2
    assert json.loads(out.stdout) == {"error": "Missing option '--reason'.", "exit_code": 2}
    assert "Missing option '--reason'" in out.stderr


# ---- progress -----------------------------------------------------------------------------------


def test_run_tells_each_step_as_it_starts_and_ends(settings, monkeypatch):
    write_bronze(settings, "credit.penalty", [dict(BASE)])
    for step in ("process", "gold", "credit", "themes", "conflicts", "extract", "kpis"):
        monkeypatch.setattr(pipeline, step, lambda *args, step=step, **kwargs: step)
    told: list[tuple[str, bool]] = []

    summary = pipeline.run(settings=settings, run_id="r1", on_step=lambda step, done: told.append((step, done)))

    steps = ["process credit.penalty", "gold", "credit", "themes", "conflicts", "extract", "kpis"]
    assert told == [(s, done) for s in steps for done in (False, True)]
    assert summary["resources"] == {"credit.penalty": "process"}


def test_ingest_tells_each_source_before_and_after(settings):
    folder = settings.inbox / "credit" / "penalty"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_bytes(_penalty_csv([_row(1), _row(2)]))
    (folder / "b.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    told: list[tuple[str, str | None]] = []

    with pytest.raises(Exception, match="1 of 2 source"):
        ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1",
                        on_source=lambda source, result: told.append((source, result and result.status)))

    a, b = str(folder / "a.csv"), str(folder / "b.csv")
    assert told == [(a, None), (a, "landed"), (b, None), (b, "rejected")]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def test_progress_is_drawn_on_a_terminal_and_nowhere_else(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    path.write_bytes(_penalty_csv([_row(1), _row(2)]))
    line = f"credit.penalty: landed 2 rows from {path} (gbk)\n"
    args = ["ingest", "credit.penalty", "--file", str(path), "--no-run"]

    piped = _invoke(tmp_path / "piped", monkeypatch, *args)  # not a terminal: the command's lines only
    assert (piped.exit_code, piped.stdout, piped.stderr) == (0, line, "")

    leader, follower = pty.openpty()  # stderr a terminal, stdout a pipe
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "GOVLAKE_VAR": str(tmp_path / "tty")}
    with subprocess.Popen([sys.executable, "-m", "govlake.cli", *args], stdout=subprocess.PIPE, stderr=follower,
                          env=env) as proc:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        stdout = proc.stdout.read().decode()
    os.close(leader)
    assert proc.returncode == 0 and stdout == line
    screen = ANSI.sub("", drawn.decode(errors="replace"))
    assert f"ingest: {path}" in screen and "1 files" in screen and "2 rows" in screen
