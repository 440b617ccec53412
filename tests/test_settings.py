"""Settings from the environment are validated before use and never pasted into SQL."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from govlake import storage
from govlake.cli import app
from govlake.config import REPO_ROOT, Settings, SettingsError, get_settings, memory_bytes

CRAFTED = "4GB'; copy (select 1) to '{target}'; --"



def test_defaults_and_valid_values(env, tmp_path):
    s = get_settings()
    assert (s.var, s.engine, s.duckdb_memory_limit, s.as_of) == (tmp_path / "var", "duckdb", "768MB", None)
    # the jars are part of the installation: GOVLAKE_VAR does not move them
    assert (s.spark_master, s.spark_jars) == ("local[2]", REPO_ROOT / "var" / "jars")
    env.setenv("GOVLAKE_DUCKDB_MEMORY", "512MiB")
    env.setenv("GOVLAKE_AS_OF", "2026-11-20")
    env.setenv("GOVLAKE_ENGINE", "spark")
    env.setenv("GOVLAKE_CATALOG_DIR", str(tmp_path / "catalog"))
    env.setenv("GOVLAKE_SPARK_MASTER", "local[*]")
    env.setenv("GOVLAKE_SPARK_JARS", str(tmp_path / "jars"))
    s = get_settings()
    assert (s.duckdb_memory_limit, s.as_of, s.engine, s.catalog_dir, s.spark_master, s.spark_jars) == (
        "512MiB", dt.date(2026, 11, 20), "spark", tmp_path / "catalog", "local[*]", tmp_path / "jars")


def test_today_is_the_date_in_the_city_whatever_the_machine_time_zone(tmp_path):
    """Run in time zones 26 hours apart (their dates always differ), the business date is Asia/Shanghai's."""
    code = "from govlake.config import get_settings; print(get_settings().today.isoformat())"
    dates = {}
    for zone in ("Etc/GMT+12", "Etc/GMT-14"):  # POSIX signs: UTC-12 and UTC+14
        env = {**os.environ, "TZ": zone, "GOVLAKE_VAR": str(tmp_path / "var")}
        env.pop("GOVLAKE_AS_OF", None)
        dates[zone] = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.strip()
    shanghai = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    assert dates == {"Etc/GMT+12": shanghai, "Etc/GMT-14": shanghai}


@pytest.mark.parametrize("master", ["local", "local[1]", "local[4,2]", "spark://spark-master:7077",
                                    "spark://a.example.org:7077,b.example.org:7077"])
def test_spark_masters(env, master):
    env.setenv("GOVLAKE_SPARK_MASTER", master)
    assert get_settings().spark_master == master


@pytest.mark.parametrize("value, size", [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1.5 gb", 15 * 10**8),
                                         ("2G", 2 * 10**9), ("1TiB", 2**40)])
def test_memory_sizes(value, size):
    assert memory_bytes(value) == size


def test_a_share_of_the_machine_memory():
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory_bytes("50%") <= total // 2 + 1


@pytest.mark.parametrize("variable, value, reason", [
    ("GOVLAKE_DUCKDB_MEMORY", CRAFTED.format(target="/tmp/x.csv"), "not a DuckDB memory size"),
    ("GOVLAKE_DUCKDB_MEMORY", "4", "not a DuckDB memory size"),
    ("GOVLAKE_DUCKDB_MEMORY", "150%", "between 0% and 100%"),
    ("GOVLAKE_DUCKDB_MEMORY", "10kb", "at least 64MiB"),
    ("GOVLAKE_AS_OF", "20261120", "not an ISO date"),
    ("GOVLAKE_AS_OF", "2026-02-30", "not a date"),
    ("GOVLAKE_ENGINE", "polars", "must be duckdb or spark"),
    ("GOVLAKE_VAR", "s3://bucket/govlake", "must be a local folder, not a URL; the lake alone may be on S3"),
    ("GOVLAKE_INBOX", "https://example.org/inbox", "must be a local folder, not a URL"),
    ("GOVLAKE_LINEAGE_URL", "marquez:5000", "not an http(s) URL"),
    ("GOVLAKE_FEED_RUN_DEADLINE", "1h", "not a number of minutes"),
    ("GOVLAKE_ALERT_WEBHOOK_URL", "hooks.example.cn", "not an http(s) URL"),
    ("GOVLAKE_SPARK_MASTER", "yarn", "not a Spark master govlake runs on"),
    ("GOVLAKE_SPARK_MASTER", "local[0]", "not a Spark master govlake runs on"),
    ("GOVLAKE_SPARK_MASTER", "spark://master", "not a Spark master govlake runs on"),
    ("GOVLAKE_SPARK_JARS", "s3://bucket/jars", "must be a local folder, not a URL"),
    ("GOVLAKE_SPARK_JARS", " ", "empty"),
    ("GOVLAKE_SPARK_REMOTE", "http://spark:15002", "not a Spark Connect URL"),
    ("GOVLAKE_SPARK_REMOTE", "sc://spark:99999", "not a Spark Connect URL"),
    ("GOVLAKE_SPARK_EXECUTOR_MEMORY", "2", "not a Spark memory size"),
    ("GOVLAKE_SPARK_EXECUTOR_MEMORY", "2GiB", "not a Spark memory size"),
    ("GOVLAKE_SPARK_EXECUTOR_MEMORY", "256m", "no driver or executor with less than 450m"),
    ("GOVLAKE_SPARK_DRIVER_MEMORY", "4 GB", "not a Spark memory size"),
    ("GOVLAKE_SPARK_DRIVER_MEMORY", "300m", "no driver or executor with less than 450m"),
    ("GOVLAKE_SPARK_EXECUTOR_CORES", "0", "not a number of cores"),
    ("GOVLAKE_SPARK_CORES_MAX", "two", "not a number of cores"),
    ("GOVLAKE_SPARK_DRIVER_HOST", "10.0.0.5", "only for a cluster's master"),
    ("GOVLAKE_SPARK_MASTER_WAIT", "120", "only for a cluster's master"),
    ("GOVLAKE_SPARK_PYTHON", "python 3", "not a Python for the executors"),
    ("GOVLAKE_SPARK_PYTHON", "/no/such/python", "no such Python on this machine"),
    ("GOVLAKE_SPARK_INGEST", "workers", "must be executors (a Spark task decodes each file"),
])
def test_bad_values_are_refused_naming_variable_and_value(env, variable, value, reason):
    env.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{variable}={value!r}: ") and reason in str(info.value)


def test_the_settings_of_a_driver_on_a_cluster(env):
    env.setenv("GOVLAKE_SPARK_MASTER", "spark://10.0.0.1:7077")
    env.setenv("GOVLAKE_SPARK_EXECUTOR_MEMORY", "2G")
    env.setenv("GOVLAKE_SPARK_DRIVER_MEMORY", "3g")
    env.setenv("GOVLAKE_SPARK_EXECUTOR_CORES", "2")
    env.setenv("GOVLAKE_SPARK_CORES_MAX", "8")
    env.setenv("GOVLAKE_SPARK_DRIVER_HOST", "10.0.0.5")
    env.setenv("GOVLAKE_SPARK_PYTHON", "/opt/govlake/.venv/bin/python")  # on the workers: not checked here
    s = get_settings()
    assert (s.spark_executor_memory, s.spark_executor_cores, s.spark_cores_max, s.spark_driver_host,
            s.spark_python, s.spark_remote) == ("2g", 2, 8, "10.0.0.5", "/opt/govlake/.venv/bin/python", None)
    assert s.spark_driver_memory == "3g"
    assert s.spark_ingest == "executors"
    assert s.spark_master_wait == 120
    env.setenv("GOVLAKE_SPARK_MASTER_WAIT", "600")
    assert get_settings().spark_master_wait == 600
    for wait in ("0", "2m", "-5"):
        env.setenv("GOVLAKE_SPARK_MASTER_WAIT", wait)
        with pytest.raises(SettingsError, match=rf"^GOVLAKE_SPARK_MASTER_WAIT='{wait}': not a number of seconds"):
            get_settings()
    env.delenv("GOVLAKE_SPARK_MASTER_WAIT")
    env.setenv("GOVLAKE_SPARK_INGEST", "driver")
    assert get_settings().spark_ingest == "driver"
    env.setenv("GOVLAKE_SPARK_CORES_MAX", "1")
    with pytest.raises(SettingsError, match=r"^GOVLAKE_SPARK_CORES_MAX='1': fewer cores than one executor takes"):
        get_settings()


def test_a_spark_connect_server_has_its_own_driver_settings(env):
    env.setenv("GOVLAKE_SPARK_REMOTE", "sc://spark-connect.example.org")
    assert get_settings().spark_remote == "sc://spark-connect.example.org"
    env.setenv("GOVLAKE_SPARK_REMOTE", "sc://127.0.0.1:15002/;use_ssl=true;token=s3cret")
    assert get_settings().spark_remote == "sc://127.0.0.1:15002/;use_ssl=true;token=s3cret"
    for variable, value in [("GOVLAKE_SPARK_MASTER", "spark://127.0.0.1:7077"), ("GOVLAKE_SPARK_CORES_MAX", "2")]:
        env.setenv(variable, value)
        with pytest.raises(SettingsError) as info:
            get_settings()
        assert str(info.value).startswith(f"{variable}={value!r}: has no effect with GOVLAKE_SPARK_REMOTE")
        env.delenv(variable)
    env.setenv("GOVLAKE_SPARK_REMOTE", "sc://host:1x/;token=s3cret")
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert str(info.value).startswith("GOVLAKE_SPARK_REMOTE='sc://host:1x/;…': not a Spark Connect URL")
    assert "s3cret" not in str(info.value)


def test_a_url_password_is_not_repeated_in_the_error(env):
    env.setenv("GOVLAKE_LINEAGE_URL", "ftp://user:s3cret@lineage.example.org/")
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert "s3cret" not in str(info.value) and "lineage.example.org" in str(info.value)


def test_a_crafted_memory_limit_writes_no_file(env, tmp_path):
    target = tmp_path / "x.csv"
    crafted = CRAFTED.format(target=target)
    env.setenv("GOVLAKE_DUCKDB_MEMORY", crafted)
    with pytest.raises(SettingsError):
        get_settings()
    # Settings built in code do not reach SQL either: connect() refuses the value
    with pytest.raises(SettingsError):
        storage.connect(Settings(var=tmp_path / "var", duckdb_memory_limit=crafted))
    assert not target.exists()


def test_connect_passes_settings_as_configuration(tmp_path):
    settings = Settings(var=tmp_path / "it's a var", duckdb_memory_limit="512MiB")
    con = storage.connect(settings)
    temp, memory, order = con.execute("select current_setting('temp_directory'), current_setting('memory_limit'), "
                                      "current_setting('preserve_insertion_order')").fetchone()
    assert (temp, memory, order) == (str(tmp_path / "it's a var" / "work" / "duckdb_tmp"), "512.0 MiB", False)
    # DuckDB spills into that folder although its name holds a quote
    con.execute("set memory_limit = '64MiB'")
    con.execute("create temp table t as select range::varchar || 'xxxxxxxxxxxxxxxxxxxxxxxx' as v from range(1000000)")
    assert con.execute("select count(*) from (select v from t order by v desc)").fetchone() == (1_000_000,)
    assert any((tmp_path / "it's a var" / "work" / "duckdb_tmp").iterdir())


def test_the_cli_prints_one_line_and_exits_2(env, tmp_path):
    target = tmp_path / "x.csv"
    env.setenv("GOVLAKE_DUCKDB_MEMORY", CRAFTED.format(target=target))
    for args in (["status"], ["catalog", "validate"], ["rules", "credit.penalty"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.splitlines() == [f"error: GOVLAKE_DUCKDB_MEMORY={CRAFTED.format(target=target)!r}: "
                                              "not a DuckDB memory size; write e.g. 4GB, 512MiB or 80% (of this "
                                              "machine's memory)"]
    assert not target.exists()


def test_the_cli_as_a_user_runs_it(tmp_path):
    env = {**os.environ, "GOVLAKE_VAR": "s3://bucket/lake"}
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "status"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("error: GOVLAKE_VAR='s3://bucket/lake': must be a local folder, not a URL; the lake alone "
                          "may be on S3: GOVLAKE_LAKE=s3://bucket/prefix\n")


def test_an_engine_this_installation_cannot_run_is_refused_not_replaced(tmp_path):
    """Without the Spark engine's jars, GOVLAKE_ENGINE=spark stops every command: the missing jar is named
    with what to do (tests/test_engine.py: with them, the steps are still refused)."""
    (tmp_path / "jars").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")}
    env.update(GOVLAKE_VAR=str(tmp_path / "var"), GOVLAKE_ENGINE="spark", GOVLAKE_SPARK_JARS=str(tmp_path / "jars"))
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "status"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    if "pyspark is not installed" in out.stderr or "no Java" in out.stderr:
        assert out.stderr.startswith("error: GOVLAKE_ENGINE='spark': ")
    else:
        assert out.stderr.startswith(f"error: GOVLAKE_SPARK_JARS={str(tmp_path / 'jars')!r}: "
                                     "delta-spark_4.2_2.13-4.4.0.jar is missing (and 7 more: ")
        assert "run `make setup`" in out.stderr
    assert not (tmp_path / "var" / "lake").exists()
