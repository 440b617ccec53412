"""infra/lint_models.py: every model rendered with the catalog's context passes sqlfluff; a violation in a
model's own SQL is reported, one inside text a context value put there is not."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from govlake.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
import lint_models  # noqa: E402

SQL_DIR = Settings(var=Path("var")).sql_dir


@pytest.mark.slow
def test_every_model_as_it_renders_passes_the_lint(tmp_path):
    settings = Settings(var=tmp_path)
    renders = lint_models.render_all(settings)  # raises on a model it has no context for
    assert {r.model for r in renders} == set(lint_models._model_names(settings.sql_dir))
    assert len({r.variant for r in renders if r.model == "staging/standardize"}) >= 8  # one per resource
    max_length = int(lint_models.rendered_config().get("max_line_length"))
    violations = lint_models.lint(renders, jobs=2) + lint_models.long_source_lines(settings.sql_dir, max_length)
    assert [str(v) for v in violations] == []


def _sql_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SQL_DIR, tmp_path / "sql"))


def test_a_violation_in_the_model_is_reported(tmp_path):
    sql = _sql_copy(tmp_path)
    path = sql / "silver" / "resent.sql.j2"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if line.lstrip().startswith("from failing_hash"))
    lines[at] = lines[at].replace("from", "FROM")
    path.write_text("".join(lines), encoding="utf-8")
    renders = lint_models.render_all(Settings(var=tmp_path, sql_dir=sql), only="silver/resent")
    found = lint_models.lint(renders)
    assert len(renders) >= 8 and len(found) == len(renders)  # once per resource it is rendered for
    assert {(v.where.split("[")[0], v.line, v.code) for v in found} == {("silver/resent", at + 1, "CP01")}


def test_a_violation_after_long_generated_texts_is_reported_where_it_is_in_the_rendering(tmp_path):
    """The lint reads a short stand-in for each long generated text (the standardize model's cleaning
    expressions): a violation after them is still found, and reported at its line and position in the rendering."""
    sql = _sql_copy(tmp_path)
    path = sql / "staging" / "standardize.sql.j2"
    text = path.read_text(encoding="utf-8")
    assert text.count("    from cleaned\n") == 1
    path.write_text(text.replace("    from cleaned\n", "    FROM cleaned\n"), encoding="utf-8")
    renders = lint_models.render_all(Settings(var=tmp_path, sql_dir=sql), only="staging/standardize")
    assert len(renders) >= 8 and min(len(r.sql) for r in renders) > 5000
    found = {v.where: v for v in lint_models.lint(renders)}
    assert sorted(found) == sorted(r.label for r in renders)  # once per resource, nothing else
    for render in renders:
        v = found[render.label]
        assert (v.code, render.sql.splitlines()[v.line - 1][v.pos - 1:]) == ("CP01", "FROM cleaned")


def test_a_violation_in_text_a_context_value_put_there_is_not_reported(tmp_path, monkeypatch):
    contexts = lint_models.contexts

    def shouting(settings):
        for model, variant, context in contexts(settings):
            if model == "governance/open_objections":  # `state in ('{{ s }}', …)`: generated SQL
                context = {"open_states": ["raised' || UPPER('x') || '"]}
            yield model, variant, context

    monkeypatch.setattr(lint_models, "contexts", shouting)
    (render,) = lint_models.render_all(Settings(var=tmp_path), only="governance/open_objections")
    assert "UPPER('x')" in render.sql
    assert lint_models.lint([render]) == []
    everything = lint_models.Render(render.model, render.variant, render.sql, generated=())
    assert [v.code for v in lint_models.lint([everything])] == ["CP03"]


def test_a_long_line_of_a_model_file_is_reported(tmp_path):
    sql = _sql_copy(tmp_path)
    path = sql / "governance" / "disputes.sql"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[-1] = lines[-1].rstrip("\n") + " " * 120 + "and true\n"
    path.write_text("".join(lines), encoding="utf-8")
    (long,) = lint_models.long_source_lines(sql, 110)
    assert (long.where, long.line, long.code) == ("sql/governance/disputes.sql", len(lines), "LT05")
