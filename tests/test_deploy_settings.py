"""The deployment's settings (infra/deploy.py), without starting anything: the env file, what wins over
what, the generated secrets and what every process is given."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "infra" / "deploy" / "govlake.env.example"


def _deploy():
    spec = importlib.util.spec_from_file_location("govlake_infra_deploy", REPO / "infra" / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy = _deploy()


def _dep(tmp_path: Path, text: str | None = None, **environ: str):
    env_file = EXAMPLE
    if text is not None:
        env_file = tmp_path / "govlake.env"
        env_file.write_text(text, encoding="utf-8")
    return deploy.Deployment(env_file, {"GOVLAKE_VAR": str(tmp_path / "var"), "PATH": "/usr/bin", **environ})


def test_the_example_lists_every_setting_the_deployment_reads_and_holds_no_secret():
    text = EXAMPLE.read_text(encoding="utf-8")
    source = (REPO / "infra" / "deploy.py").read_text(encoding="utf-8")
    read = set(re.findall(r'settings\.get\(\s*"([A-Z_]+)"', source)) | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert read - {"AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER"} <= listed
    values = deploy.read_env_file(EXAMPLE, {})
    for secret in ("FERNET_KEY", "JWT_SECRET", "SECRET_KEY", "PASSWORD"):
        assert not [k for k, v in values.items() if secret in k and v], secret
    assert not re.search(r"://[^/\s:]+:[^@\s]+@", text.replace("USER:PASSWORD@", ""))  # no URL with a password


def test_env_file_syntax_quotes_comments_and_references(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("# a comment\n\nA=1\nexport B=two words # trailing\nC=\"${A}/x\"\nD='${A}/x'\n"
                        "E=${MISSING:-fallback}\nF=${HOME_DIR}/lake\n", encoding="utf-8")
    assert deploy.read_env_file(env_file, {"HOME_DIR": "/srv"}) == {
        "A": "1", "B": "two words", "C": "1/x", "D": "${A}/x", "E": "fallback", "F": "/srv/lake"}
    env_file.write_text("A=1\nnot a setting\n", encoding="utf-8")
    with pytest.raises(deploy.DeployError, match=r"x\.env:2"):
        deploy.read_env_file(env_file, {})


def test_the_environment_wins_over_the_file_and_empty_means_unset(tmp_path):
    dep = _dep(tmp_path, "GOVLAKE_ENGINE=duckdb\nAIRFLOW__API__PORT=8080\nGOVLAKE_INBOX=\n",
               AIRFLOW__API__PORT="9999")
    assert dep.settings["AIRFLOW__API__PORT"] == "9999" and dep.api_url == "http://127.0.0.1:9999"
    assert "GOVLAKE_INBOX" not in dep.settings
    assert dep.local_database and dep.executor == "local"
    assert dep.services == ["api-server", "scheduler", "dag-processor", "triggerer"]


def test_services_follow_the_executor_and_bad_values_are_refused(tmp_path):
    assert _dep(tmp_path, GOVLAKE_EXECUTOR="celery").services == [
        "redis", "api-server", "scheduler", "dag-processor", "triggerer", "worker"]
    assert _dep(tmp_path, GOVLAKE_EXECUTOR="celery", GOVLAKE_DEPLOY_SERVICES="worker").services == ["worker"]
    assert "redis" not in _dep(tmp_path, GOVLAKE_EXECUTOR="celery",
                               AIRFLOW__CELERY__BROKER_URL="redis://broker.example:6379/0").services
    # the supervisor, started with the processes' environment (a derived broker URL in it), starts the same
    celery = _dep(tmp_path, GOVLAKE_EXECUTOR="celery")
    again = deploy.Deployment(celery.env_file, celery.environment(create=True))
    assert again.services == celery.services
    with pytest.raises(deploy.DeployError, match="GOVLAKE_EXECUTOR"):
        _dep(tmp_path, GOVLAKE_EXECUTOR="kubernetes")
    with pytest.raises(deploy.DeployError, match="unknown webserver"):
        _dep(tmp_path, GOVLAKE_DEPLOY_SERVICES="scheduler,webserver")
    with pytest.raises(deploy.DeployError, match="for GOVLAKE_EXECUTOR=celery"):
        _dep(tmp_path, GOVLAKE_DEPLOY_SERVICES="scheduler,worker")


def test_secrets_are_generated_once_0600_and_given_ones_win(tmp_path):
    dep = _dep(tmp_path)
    env = dep.environment(create=True)
    secrets = dep.secrets_dir / "secrets.env"
    assert dep.secrets_dir.stat().st_mode & 0o777 == 0o700
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert (dep.secrets_dir / "passwords.json").stat().st_mode & 0o777 == 0o600
    assert set(json.loads((dep.secrets_dir / "passwords.json").read_text())) == {"admin"}
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert len(env[key]) >= 32
    assert _dep(tmp_path).environment(create=True)["AIRFLOW__CORE__FERNET_KEY"] == env["AIRFLOW__CORE__FERNET_KEY"]
    given = _dep(tmp_path, AIRFLOW__CORE__FERNET_KEY="from-the-vault").environment(create=True)
    assert given["AIRFLOW__CORE__FERNET_KEY"] == "from-the-vault"


def test_every_process_gets_the_settings_the_executor_the_mark_and_both_lineage_sides(tmp_path):
    dep = _dep(tmp_path, GOVLAKE_ENGINE="duckdb", GOVLAKE_EXECUTOR="celery", GOVLAKE_REDIS_PORT="7000",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg://airflow@db.example:5432/airflow")
    env = dep.environment(create=True)
    assert env["GOVLAKE_ENGINE"] == "duckdb" and env["GOVLAKE_VAR"] == str(tmp_path / "var")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@127.0.0.1:7000/0")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg://airflow@db.example:5432/airflow"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env[deploy.MARK] == str(tmp_path / "var" / "deploy")
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport["type"] == "file" and transport["log_file_path"] == str(tmp_path / "var/lineage/airflow.jsonl")
    assert not dep.local_database
    assert deploy._mask("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"


def test_a_worker_machine_needs_the_first_machines_database_and_secrets(tmp_path):
    dep = _dep(tmp_path, GOVLAKE_EXECUTOR="celery", GOVLAKE_DEPLOY_SERVICES="worker")
    with pytest.raises(deploy.DeployError, match="SQL_ALCHEMY_CONN"):
        deploy.prepare(dep)
    dep = _dep(tmp_path, GOVLAKE_EXECUTOR="celery", GOVLAKE_DEPLOY_SERVICES="worker",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg://airflow@db.example:5432/airflow")
    with pytest.raises(deploy.DeployError, match="secrets.env"):
        deploy.prepare(dep)


def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(deploy.DeployError, match=f"AIRFLOW__API__PORT={port}: the port is taken"):
            deploy._check_ports(_dep(tmp_path, AIRFLOW__API__PORT=str(port)))
        # a worker machine does not serve the API: that port is none of its business
        deploy._check_ports(_dep(tmp_path, GOVLAKE_EXECUTOR="celery", GOVLAKE_DEPLOY_SERVICES="worker",
                                 AIRFLOW__API__PORT=str(port), AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="0"))


def test_a_clock_correction_does_not_make_a_running_service_look_ended(monkeypatch):
    """The state tells a process (supervisor, service, session leader) by the seconds from boot to its start:
    psutil's create_time() adds the boot time as the clock gives it now, in whole seconds, which a correction of
    the clock by a fraction of a second moves by one — `status` would then call a running service stopped."""
    import psutil

    me = psutil.Process()
    entry = {"pid": me.pid, "since_boot": deploy.since_boot(me)}
    sessions = {me.pid: entry["since_boot"]}
    assert deploy._running(entry) is not None and deploy._ours(sessions) == {me.pid}
    platform = psutil._psplatform  # where create_time() and boot_time() read the boot time
    booted = platform.boot_time()
    monkeypatch.setattr(platform, "boot_time", lambda: booted + 1)  # the clock set forward across a second
    assert abs(psutil.Process().create_time() - me.create_time()) > 0.9  # what the state compared before
    assert deploy._running(entry) is not None and deploy._ours(sessions) == {me.pid}
    # another process that got the same pid
    assert deploy._running(entry | {"since_boot": entry["since_boot"] - 2}) is None
    assert deploy._ours({me.pid: entry["since_boot"] - 2}) == set()


def test_the_state_of_a_supervisor_before_since_boot_is_still_read(tmp_path):
    """A deployment started by the code before (its state holds create_time) is found by `status` and `down`."""
    import psutil

    dep = _dep(tmp_path)
    me = psutil.Process()
    dep.run_dir.mkdir(parents=True, exist_ok=True)
    dep.state_file.write_text(json.dumps({"supervisor": {"pid": me.pid, "create_time": me.create_time()},
                                          "sessions": [[me.pid, me.create_time()]]}))
    assert deploy._running(deploy._state(dep)["supervisor"]) is not None
    assert deploy._ours(deploy.recorded_sessions(dep)) == {me.pid}
