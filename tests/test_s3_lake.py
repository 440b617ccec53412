"""The lake on S3 (GOVLAKE_LAKE=s3://…) against a real S3-compatible server on 127.0.0.1 (moto, tests/_s3.py):
the setting and the AWS variables are validated, tables and step intents live on S3, two writer processes
committing to one table lose no commit and no row, the pipeline builds the same tables as on local disk,
and the commands that cannot work on S3 yet refuse (exit code 2) before writing anything."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from govlake import objectstore, steps, storage
from govlake.cli import app
from govlake.config import Settings, SettingsError, get_settings, lake_location, s3_options

HERE = Path(__file__).parent
REPO = HERE.parent
AS_OF = dt.date(2026, 11, 20)
SECRET = "govlake-test-secret"  # the test server's (moto accepts any key)


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


# ---- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("s3://bucket/prefix", "s3://bucket/prefix"),
    ("s3://my.bucket-1/a/b/", "s3://my.bucket-1/a/b"),
    ("s3://bucket", "s3://bucket"),
])
def test_lake_uris_are_normalized(value, expected):
    assert lake_location(value) == expected


def test_a_local_lake_folder(env, tmp_path):
    env.setenv("GOVLAKE_LAKE", str(tmp_path / "elsewhere"))
    s = get_settings()
    assert s.lake == tmp_path / "elsewhere" and not s.lake_on_s3
    assert s.table_path("silver", "x") == tmp_path / "elsewhere" / "silver" / "x"
    assert s.work == tmp_path / "var" / "work"  # var/ stays where GOVLAKE_VAR says


@pytest.mark.parametrize("value, reason", [
    ("s3a://bucket/lake", "only s3:// URIs are supported"),
    ("gs://bucket/lake", "only s3:// URIs are supported"),
    ("s3://AKIA:hunter2@bucket/lake", "credentials do not go in the URI"),
    ("s3://bucket:9000/lake", "no port, query or fragment"),
    ("s3://bucket/lake?x=1", "no port, query or fragment"),
    ("s3://Bucket_Name/lake", "not an S3 bucket name"),
    ("s3://bucket/a//b", "empty, '.' or '..' segment"),
    ("s3://bucket/a/../b", "empty, '.' or '..' segment"),
    ("  ", "empty"),
])
def test_bad_lake_values_are_refused(env, value, reason):
    env.setenv("GOVLAKE_LAKE", value)
    with pytest.raises(SettingsError, match="GOVLAKE_LAKE") as exc:
        get_settings()
    assert reason in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_the_aws_variables_are_checked_and_secrets_never_shown(env):
    env.setenv("GOVLAKE_LAKE", "s3://bucket/lake")
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        env.delenv(key)
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID"):
        get_settings()
    env.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    with pytest.raises(SettingsError, match="AWS_SECRET_ACCESS_KEY"):
        get_settings()
    env.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    with pytest.raises(SettingsError, match="AWS_ENDPOINT_URL.*AWS_ALLOW_HTTP=true"):
        get_settings()
    env.setenv("AWS_ALLOW_HTTP", "maybe")
    with pytest.raises(SettingsError, match="AWS_ALLOW_HTTP"):
        get_settings()
    env.setenv("AWS_ALLOW_HTTP", "true")
    env.setenv("AWS_ENDPOINT_URL_S3", "ftp://127.0.0.1:9000")
    with pytest.raises(SettingsError, match="AWS_ENDPOINT_URL_S3"):
        get_settings()
    env.delenv("AWS_ENDPOINT_URL_S3")
    env.setenv("AWS_DEFAULT_REGION", "cn-north-1")
    s = get_settings()
    o = s3_options()
    assert (s.lake, o.region, o.endpoint, o.allow_http, o.use_ssl) == (
        "s3://bucket/lake", "cn-north-1", "http://127.0.0.1:9000", True, False)
    assert "s3cr3t-value" not in repr(o) and "s3cr3t-value" not in repr(s)
    # the command line names the variable and exits 2, without echoing the secret
    env.delenv("AWS_ALLOW_HTTP")
    r = subprocess.run([sys.executable, "-m", "govlake.cli", "status"], capture_output=True, text=True,
                       env=dict(os.environ))
    assert r.returncode == 2 and "AWS_ENDPOINT_URL" in r.stderr and "s3cr3t-value" not in r.stderr + r.stdout


def test_govlake_var_stays_local(env):
    env.setenv("GOVLAKE_VAR", "s3://bucket/var")
    with pytest.raises(SettingsError, match="GOVLAKE_VAR.*must be a local folder.*GOVLAKE_LAKE=s3://"):
        get_settings()


# ---- tables, objects, steps on S3 ----------------------------------------------------------------------


def test_tables_on_s3_are_written_merged_and_read(s3_lake):
    settings = get_settings()
    path = storage.table_path(settings, "silver", "t")
    assert path == f"{s3_lake}/silver/t"
    storage.write_table(path, pa.table({"k": [1, 2, 3], "v": ["a", "b'c", "统一"]}), mode="append", run_id="r1")
    storage.merge_table(path, pa.table({"k": [3, 4], "v": ["D", "E"]}), key=["k"], run_id="r2")
    assert storage.row_count(path) == 4 and storage.row_count(path, version=0) == 3
    version, added = storage.files_since(path, 0)
    assert version == 1 and added and all(f.startswith(f"{s3_lake}/silver/t/") for f in added)
    con = storage.connect(settings)
    assert storage.register(con, "t", path)  # DuckDB over the Parquet files, through httpfs
    assert con.sql("select k, v from t order by k").fetchall() == [(1, "a"), (2, "b'c"), (3, "D"), (4, "E")]
    # the secret is bound, scoped to the bucket, and DuckDB shows it redacted
    (shown,) = con.execute("select secret_string from duckdb_secrets() where name = 'govlake_lake'").fetchone()
    assert SECRET not in shown and "scope=s3://govlake-test/" in shown
    # a second connection, not made by storage.connect, reads the same way
    other = duckdb.connect()
    storage.register(other, "t", path, version=0)
    assert other.sql("select count(*) from t").fetchone() == (3,)
    assert objectstore.delta_tables(settings.layer("silver")) == ["t"]
    assert storage.open_table(storage.table_path(settings, "gold", "absent")) is None
    # a table clustered on a date: the lookup of the keys it holds reads the objects on S3 too
    dated = storage.table_path(settings, "silver", "dated")
    day = pa.array([dt.date(2026, 1, 1), dt.date(2026, 1, 2)], pa.date32())
    storage.write_table(dated, pa.table({"k": ["a", "b"], "c": day}), mode="append", run_id="r1", cluster_by="c")
    matched, new, span, files, _ = storage.split_matched(dated, pa.table({"k": ["b", "z"], "c": day}),
                                                         key=["k"], cluster_by="c")
    assert (matched["k"].to_pylist(), new["k"].to_pylist()) == (["b"], ["z"])
    # b's date in the table and in the source (its one file is the span's: no key list narrows it), and its file
    assert span == "(c between '2026-01-01' and '2026-01-02')"
    assert files == tuple(storage.open_table(dated).file_uris()) and files[0].startswith("s3://")
    # written with its key's hash (as the credit step writes its record tables): found by the hash, then the key
    con.register("dated", storage.open_table(dated).to_pyarrow_table())
    storage.write_table(dated, con.sql(f"select *, {storage.key_hash_sql(['k'])} as {storage.KEY_HASH} from dated")
                        .to_arrow_table(), mode="overwrite", run_id="r2", cluster_by="c")
    matched, new, span, files, _ = storage.split_matched(dated, pa.table({"k": ["b", "z"], "c": day}),
                                                         key=["k"], cluster_by="c")
    assert (matched["k"].to_pylist(), new["k"].to_pylist()) == (["b"], ["z"])
    assert span == "(c between '2026-01-01' and '2026-01-02')"


def test_step_intents_and_history_live_on_s3(s3_lake):
    settings = get_settings()

    def body(intent: steps.Intent) -> None:
        intent.write_table("meta/example", pa.table({"x": [1]}), mode="append")
        raise RuntimeError("killed after its first commit")

    with pytest.raises(RuntimeError):
        steps.run(settings, "example", lock="example", run_id="run-1", params=dict, reads=lambda _: ["meta/example"],
                  body=body)
    assert [i["run_id"] for i in steps.open_intents(settings)] == ["run-1"]
    assert objectstore.read_text(f"{s3_lake}/_steps/example.json") is not None
    # the next run finishes the interrupted intent first (its commit is skipped by its txn), then runs
    ran = []
    steps.run(settings, "example", lock="example", run_id="run-2", params=dict, reads=lambda _: ["meta/example"],
              body=lambda intent: ran.append(intent.run_id) or intent.write_table("meta/example", pa.table({"x": [2]}),
                                                                                  mode="append"))
    assert ran == ["run-1", "run-2"] and steps.open_intents(settings) == []
    assert storage.row_count(storage.table_path(settings, "meta", "example")) == 2
    events = [(e["event"], e["consumer"]) for e in steps.history(settings)]
    assert events == [("begin", "example"), ("close", "example"), ("begin", "example"), ("close", "example")]
    status = _cli("status", "--json")
    assert status.exit_code == 0, status.output
    doc = json.loads(status.output)
    assert doc["lake"] == s3_lake and {(t["layer"], t["table"], t["rows"]) for t in doc["tables"]} == {
        ("meta", "example", 2)}


def _commits(uri: str) -> dict[int, dict]:
    """Every commit of the table at ``uri``: version → its commitInfo, read from the log objects."""
    out = {}
    log = objectstore.join(uri, "_delta_log")
    for name in objectstore.children(log):
        if name.endswith(".json") and name[:-5].isdigit():
            lines = (objectstore.read_text(objectstore.join(log, name)) or "").splitlines()
            info = next(json.loads(x)["commitInfo"] for x in lines if x.strip() and "commitInfo" in json.loads(x))
            out[int(name[:-5])] = info
    return out


@pytest.mark.parametrize("mode", ["append", "mixed"])
def test_two_writer_processes_lose_no_commit_and_no_row(s3_lake, mode):
    """Two processes commit to one table at once, through the server's conditional puts; every commit
    keeps its own version (none replaced another) and every row is there."""
    sys.path.insert(0, str(HERE))
    import _s3_writer

    settings = get_settings()
    uri = storage.table_path(settings, "silver", "contended")
    storage.write_table(uri, _s3_writer.rows([(0, 0)], "w0"), mode="append", run_id="create")
    ops = 12
    procs = [subprocess.Popen([sys.executable, str(HERE / "_s3_writer.py"), uri, w, str(ops), mode],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
             for w in ("w1", "w2")]
    results = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, out + err[-3000:]
    commits = _commits(uri)
    assert sorted(commits) == list(range(2 * ops + 1)), "a version is missing or was never written"
    # the two writers really ran at once: their commits interleave
    by_writer = {w: [v for v, c in commits.items() if str(c.get("govlake.run_id")).startswith(f"{w}-")]
                 for w in ("w1", "w2")}
    assert min(by_writer["w2"]) < max(by_writer["w1"]) and min(by_writer["w1"]) < max(by_writer["w2"]), by_writer
    run_ids = sorted(c.get("govlake.run_id") for c in commits.values())
    assert run_ids == sorted(["create"] + [f"w{w}-{i}" for w in (1, 2) for i in range(ops)])
    table = storage.open_table(uri).to_pyarrow_table().to_pylist()
    got = {(r["k"], r["v"], r["writer"]) for r in table}
    assert len(table) == len(got)
    assert got == {(0, 0, "w0")} | _s3_writer.expected("w1", ops, mode) | _s3_writer.expected("w2", ops, mode)


# ---- what refuses ---------------------------------------------------------------------------------------


def _objects(uri: str) -> set[str]:
    import pyarrow.fs as pafs

    fs, path = objectstore.filesystem(uri)
    return {i.path for i in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))}


@pytest.mark.parametrize("args", [
    ["backup", "--to", "{tmp}/backups"],
    ["restore", "--from", "{tmp}/backups"],
    ["restore", "--from", "{tmp}/backups", "--table", "silver/t"],
    ["restore", "--as-of", "2026-11-20T09:00:00+08:00"],
    ["restore", "--resume"],
    ["drill", "--from", "{tmp}/backups"],
])
def test_folder_copying_commands_refuse_a_lake_on_s3(s3_lake, tmp_path, args):
    settings = get_settings()
    storage.write_table(storage.table_path(settings, "silver", "t"), pa.table({"k": [1]}), mode="append",
                        run_id="r1")
    before = _objects(s3_lake)
    (tmp_path / "backups").mkdir()
    result = _cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert "GOVLAKE_LAKE" in result.output and "does not work on a lake on S3 yet" in result.output
    assert "nothing was done" in result.output
    assert _objects(s3_lake) == before
    assert list((tmp_path / "backups").iterdir()) == []
    assert not (settings.var / "locks" / "fence.json").exists()


def test_vacuum_works_on_s3(s3_lake):
    settings = get_settings()
    path = storage.table_path(settings, "meta", "vac")
    storage.write_table(path, pa.table({"k": [1]}), mode="append", run_id="r1")
    storage.write_table(path, pa.table({"k": [2]}), mode="overwrite", run_id="r2")
    result = _cli("vacuum", "--retain-hours", "0", "--force", "--json")
    assert result.exit_code == 0, result.output
    assert storage.open_table(path).to_pyarrow_table().to_pylist() == [{"k": 2}]
    assert len([o for o in _objects(path) if o.endswith(".parquet")]) == 1


# ---- the pipeline: the same tables on S3 as on local disk --------------------------------------------


def _load_chaos():
    spec = importlib.util.spec_from_file_location("govlake_infra_chaos", REPO / "infra" / "chaos.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)  # registered first: its dataclasses look their module up
    return module


def _digest(settings: Settings) -> dict[str, str]:
    """Per table (``layer/name``, ``extract/name``) a content hash of its rows, in any order, the columns
    that differ between two correct runs (ids, wall-clock times: infra/chaos.py's VOLATILE) left out."""
    volatile = _load_chaos().VOLATILE

    def content(table: pa.Table) -> str:
        names = sorted(n for n in table.column_names if n not in volatile)
        rows = sorted(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False)
                      for r in table.select(names).to_pylist())
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()

    out = {}
    for layer in storage.LAYERS:
        for name in objectstore.delta_tables(settings.layer(layer)):
            if layer == "meta" and name not in ("batches", "objections", "objections_history"):
                continue
            out[f"{layer}/{name}"] = content(storage.open_table(objectstore.join(settings.layer(layer), name))
                                             .to_pyarrow_table())
    con = duckdb.connect(str(settings.extracts / "analyst.duckdb"), read_only=True)
    for (name,) in con.execute("select table_name from duckdb_tables() where table_name <> 'extract_info'").fetchall():
        out[f"extract/{name}"] = content(con.execute(f'select * from "{name}"').to_arrow_table())
    con.close()
    return out


RESOURCES = ("amr.enterprise", "credit.penalty", "credit.repair")


@pytest.mark.slow
@pytest.mark.integration
def test_the_pipeline_builds_the_same_tables_on_s3_as_on_local_disk(s3, tmp_path, env):
    """`govlake generate`, `govlake ingest` of three feeds and `govlake run`, once with the lake on local disk
    and once on S3 (at the same time, from the same inbox): every table has the same content."""
    govlake = str(Path(sys.executable).parent / "govlake")
    inbox = tmp_path / "inbox"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GOVLAKE_", "AWS_"))}
    base |= {"GOVLAKE_INBOX": str(inbox), "GOVLAKE_AS_OF": AS_OF.isoformat(), "GOVLAKE_LOCK_WAIT": "60"}
    subprocess.run([govlake, "generate", "--scale", "150", "--seed", "7"], check=True, capture_output=True,
                   env=base | {"GOVLAKE_VAR": str(tmp_path / "gen")})
    envs = {"local": base | {"GOVLAKE_VAR": str(tmp_path / "local")},
            "s3": base | {"GOVLAKE_VAR": str(tmp_path / "s3")} | s3.env("parity")}

    def chain(which: str) -> list[tuple[list[str], int, str]]:
        out = []
        for args in [*(["ingest", code] for code in RESOURCES), ["run"]]:
            r = subprocess.run([govlake, *args], capture_output=True, text=True, env=envs[which], timeout=600)
            out.append((args, r.returncode, r.stderr[-2000:]))
            if r.returncode not in (0, 3):
                break
        return out

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(envs, pool.map(chain, envs)))
    for which, steps_ in done.items():
        for args, code, err in steps_:
            assert code in (0, 3), f"{which}: govlake {' '.join(args)} exited {code}: {err}"
    assert [c for _, c, _ in done["local"]] == [c for _, c, _ in done["s3"]]
    for key, value in envs["s3"].items():
        env.setenv(key, value)
    on_s3 = _digest(get_settings())
    local = _digest(Settings(var=tmp_path / "local", inbox=inbox))
    assert {"bronze/credit_penalty", "silver/amr_enterprise", "gold/base/legal_entity",
            "gold/theme/penalty_publication", "gold/theme/enterprise_credit_profile"} <= set(local)
    assert sorted(on_s3) == sorted(local)
    differ = [t for t in local if local[t] != on_s3[t]]
    assert not differ, f"tables whose content differs between S3 and local disk: {differ}"
    assert collections.Counter(k.split("/")[0] for k in local)["extract"] > 0
    assert not (tmp_path / "s3" / "lake").exists()  # nothing of the lake went to var/


def test_spark_gets_s3a_and_the_s3_jars_only_for_a_lake_on_s3(s3_lake, tmp_path):
    import dataclasses

    from govlake.engine import S3_JARS, s3_jars

    settings = dataclasses.replace(get_settings(), spark_jars=tmp_path / "jars")
    conf = objectstore.spark_s3_conf(settings)
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert not any(SECRET in v for v in conf.values())
    with pytest.raises(SettingsError, match="GOVLAKE_SPARK_JARS.*bundle-2.35.4.jar.*make setup"):
        s3_jars(settings)
    (tmp_path / "jars").mkdir()
    for name in S3_JARS:
        (tmp_path / "jars" / name).write_bytes(b"")
    assert [p.name for p in s3_jars(settings)] == list(S3_JARS)
    local = dataclasses.replace(settings, lake_at=None)
    assert objectstore.spark_s3_conf(local) == {} and s3_jars(local) == []
