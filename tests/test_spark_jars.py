"""The Spark engine's jars, locked in infra/spark/pom.xml: the jars govlake.engine loads are those the pom
fetches, every version fixed and nothing transitive, none a second copy of a jar pyspark ships, and each
built for the pyspark installed (Spark 4.2 and Scala 2.13 for Delta, pyspark's Hadoop for hadoop-aws,
pyspark's Jackson). No JVM is started."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from govlake.config import REPO_ROOT
from govlake.engine import DELTA_JARS, LOGSTORE_JAR, S3_JARS

POM = REPO_ROOT / "infra" / "spark" / "pom.xml"
LOGSTORE_POM = REPO_ROOT / "infra" / "spark" / "logstore" / "pom.xml"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _dependencies(pom: Path = POM) -> list[dict[str, str]]:
    root = ET.parse(pom).getroot()
    props = {p.tag.split("}")[1]: p.text or "" for p in root.find("m:properties", NS)}
    out = []
    for dep in root.findall("m:dependencies/m:dependency", NS):
        fields = {f: dep.findtext(f"m:{f}", default="", namespaces=NS) for f in ("groupId", "artifactId", "version")}
        fields["version"] = re.sub(r"\$\{([^}]+)\}", lambda m: props[m.group(1)], fields["version"])
        fields["exclusions"] = [(e.findtext("m:groupId", namespaces=NS), e.findtext("m:artifactId", namespaces=NS))
                                for e in dep.findall("m:exclusions/m:exclusion", NS)]
        fields["scope"] = dep.findtext("m:scope", default="compile", namespaces=NS)
        out.append(fields)
    return out


def _pyspark_jars() -> dict[str, str]:
    """artifact → version of the jars pyspark ships."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (the uv spark group)")
    folder = Path(importlib.util.find_spec("pyspark").origin).parent / "jars"
    found = (re.match(r"^(.+?)-(\d[^-]*(?:-[^-]+)?)\.jar$", p.name) for p in folder.glob("*.jar"))
    return {m.group(1): m.group(2) for m in found if m}


def test_the_engine_loads_the_jars_the_pom_locks():
    deps = _dependencies()
    fetched = [j for j in DELTA_JARS + S3_JARS if j != LOGSTORE_JAR]  # the LogStore's jar is built, not fetched
    assert sorted(f"{d['artifactId']}-{d['version']}.jar" for d in deps) == sorted(fetched)
    for d in deps:
        assert re.fullmatch(r"\d+(\.\d+)+(\.Final)?", d["version"]), d   # fixed, no range, no SNAPSHOT
        assert d["exclusions"] == [("*", "*")], d   # nothing transitive: every jar is listed
        assert d["scope"] == "compile", d


def test_no_jar_is_a_second_copy_of_one_pyspark_ships():
    shipped = _pyspark_jars()
    assert not {d["artifactId"] for d in _dependencies()} & set(shipped)


def test_each_jar_is_built_for_the_installed_pyspark():
    import pyspark

    shipped = _pyspark_jars()
    deps = {d["artifactId"]: d["version"] for d in _dependencies()}
    spark = ".".join(pyspark.__version__.split(".")[:2])
    scala = ".".join(shipped["scala-library"].split(".")[:2])
    assert f"delta-spark_{spark}_{scala}" in deps, (spark, scala)
    delta = deps[f"delta-spark_{spark}_{scala}"]
    assert {v for a, v in deps.items() if a.startswith("delta-")} == {delta}
    assert deps["hadoop-aws"] == shipped["hadoop-client-api"]
    assert deps["jackson-datatype-jdk8"] == shipped["jackson-databind"]


def test_the_logstore_is_built_against_the_jars_it_runs_with():
    """infra/spark/logstore compiles against delta-storage and Hadoop's client API at the versions the engine
    loads (the pom's delta-storage, pyspark's hadoop-client-api), ships neither, and fixes every plugin."""
    root = ET.parse(LOGSTORE_POM).getroot()
    assert f"{root.findtext('m:artifactId', namespaces=NS)}-{root.findtext('m:version', namespaces=NS)}.jar" \
        == LOGSTORE_JAR
    deps = {d["artifactId"]: d for d in _dependencies(LOGSTORE_POM)}
    assert set(deps) == {"delta-storage", "hadoop-client-api"}
    assert all(d["scope"] == "provided" and d["exclusions"] == [("*", "*")] for d in deps.values())
    assert deps["delta-storage"]["version"] == {d["artifactId"]: d["version"] for d in _dependencies()}["delta-storage"]
    assert deps["hadoop-client-api"]["version"] == _pyspark_jars()["hadoop-client-api"]
    plugins = root.findall("m:build/m:pluginManagement/m:plugins/m:plugin", NS)
    assert {p.findtext("m:artifactId", namespaces=NS) for p in plugins} >= {
        "maven-compiler-plugin", "maven-jar-plugin", "maven-resources-plugin", "maven-surefire-plugin"}
    assert all(re.fullmatch(r"\d+(\.\d+)+", p.findtext("m:version", namespaces=NS)) for p in plugins)


def test_make_jars_copies_what_the_pom_lists_into_var_jars():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^setup: jars$", makefile, re.M)
    assert "mvn -q -B -Dstyle.color=never -f infra/spark/pom.xml dependency:copy-dependencies" in makefile
    assert "-f infra/spark/logstore/pom.xml" in makefile
    assert "spark.jars.packages" not in makefile
