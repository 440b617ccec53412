"""Hostile department files: each ends in a clear rejection naming the file (and row), nothing else.

Memory bounds are checked by running the reader in a child process (``_bounded``): its peak resident
memory may grow by at most 256 MiB over what it had after importing, and its address space is capped
(1 GiB over the imports) so that a reader allocating by what a file declares dies there instead of
taking the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from deltalake import DeltaTable

from govlake import storage
from govlake.catalog import get_catalog
from govlake.ingest import IngestError, discover, ingest_resource
from govlake.ingest import _csv as csv_module
from govlake.ingest import _jsonl as jsonl_module
from govlake.ingest import _xlsx_limits as limits
from govlake.ingest._paths import open_source
from test_ingest import HEADER, _csv_text, _row, _write  # noqa: E402

TAX_HEADER = ["纳税人识别号", "纳税人名称", "注册地址", "评价年度", "纳税信用级别", "评价日期"]


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> str:
    return _csv_text(header, rows)


def _log(settings) -> list[dict]:
    rows = DeltaTable(str(storage.table_path(settings, "meta", "ingest_log"))).to_pyarrow_table().to_pylist()
    return [r for r in rows if r["status"] != "landing"]


def _bronze(settings, code: str = "credit.penalty") -> list[dict]:
    table = storage.open_table(storage.table_path(settings, "bronze", get_catalog().resource(code).slug))
    return [] if table is None else sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["_row_number"])


def _rejected(settings, code: str, path: Path) -> str:
    """Ingest ``path`` expecting a rejection; the message, after checking the log and bronze."""
    with pytest.raises(IngestError) as info:
        ingest_resource(code, files=[path], settings=settings, run_id="r1")
    [batch] = info.value.result.batches
    assert batch.status == "rejected" and batch.rows == 0
    assert str(path) in batch.error
    assert [(r["source"], r["status"]) for r in _log(settings)] == [(str(path), "rejected")]
    assert _bronze(settings, code) == []
    return batch.error


# ---- workbooks -------------------------------------------------------------------------------

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
       'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
       'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
         '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_BOOK = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
         '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
         '<sheet name="纳税信用评价" sheetId="1" r:id="rId1"/></sheets></workbook>')
_BOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
              'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
              'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')


def _cell(ref: str | None, text: str) -> str:
    r = f' r="{ref}"' if ref else ""
    return f'<c{r} t="inlineStr"><is><t>{text}</t></is></c>'


def _workbook(path: Path, rows_xml: str, **extra_parts: bytes) -> Path:
    """A minimal .xlsx whose sheet 纳税信用评价 holds ``rows_xml`` (hand-written, as a hostile tool would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
             f'spreadsheetml/2006/main"><sheetData>{rows_xml}</sheetData></worksheet>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("[Content_Types].xml", _CT), ("_rels/.rels", _RELS), ("xl/workbook.xml", _BOOK),
                           ("xl/_rels/workbook.xml.rels", _BOOK_RELS), ("xl/worksheets/sheet1.xml", sheet),
                           *extra_parts.items()]:
            z.writestr(name, data)
    return path


def _header_row() -> str:
    return '<row r="1">' + "".join(_cell(f"{chr(65 + i)}1", h) for i, h in enumerate(TAX_HEADER)) + "</row>"


def _bounded(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` (with ``settings``, ``source``-opening helpers imported) in a child limited to its
    address space after imports + 256 MiB."""
    script = textwrap.dedent('''
        import resource, sys
        from pathlib import Path
        import pyarrow, python_calamine  # noqa: F401  (loaded before the limit)
        from govlake.catalog import get_catalog
        from govlake.ingest import IngestError
        from govlake.ingest._bronze import Assembler, Provenance
        from govlake.ingest._encoding import fingerprint, sniff
        from govlake.ingest._paths import open_source
        from govlake.ingest._csv import read_csv
        from govlake.ingest._jsonl import read_jsonl
        from govlake.ingest._xlsx import read_xlsx
        size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 30), size + (1 << 30)))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        import atexit
        atexit.register(lambda: print("GREW_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base,
                                      file=sys.stderr))

        def rows(code, path):
            import datetime as dt
            res = get_catalog().resource(code)
            asm = Assembler(res, Provenance(code, "b", str(path), "h", dt.datetime.now(dt.UTC)))
            with open_source(Path(path), inbox=None) as source:
                if path.endswith(".xlsx"):
                    fingerprint(source)
                    batches = read_xlsx(source, res, asm)
                else:
                    facts = sniff(source)
                    reader = read_jsonl if path.endswith((".json", ".jsonl")) else read_csv
                    batches = reader(source, facts, res, asm)
                return sum(b.num_rows for b in batches)
        try:
    ''') + textwrap.indent(textwrap.dedent(code), "    ") + textwrap.dedent('''
        except IngestError as exc:
            print("REJECTED", exc)
    ''')
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if out.returncode == 0:
        grew = int(out.stderr.split("GREW_KIB")[-1].split()[0])
        assert grew < 256 * 1024, f"the reader's resident memory grew by {grew / 1024:.0f} MiB"
    return out


def test_a_cell_at_xfd1048576_is_refused_before_calamine_allocates(tmp_path):
    path = _workbook(tmp_path / "far.xlsx", _header_row() + '<row r="1048576">' + _cell("XFD1048576", "x")
                     + "</row>")
    assert path.stat().st_size < 5000
    out = _bounded(f"print(rows('tax.credit_rating', {str(path)!r}))", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"REJECTED {path}: sheet '纳税信用评价' has cells from A1 to XFD1048576 "
                                 "(16,384 columns × 1,048,576 rows), beyond the limit of 1,000 columns")


def test_cells_without_references_are_placed_as_calamine_would(settings):
    """20,000 cells with no ``r`` in one row (calamine puts each after the previous) and a row far below."""
    cells = "".join(_cell(None, "z") for _ in range(20_000))
    path = _workbook(settings.inbox / "noref.xlsx", f"<row>{cells}</row>" + '<row r="200000">'
                     + _cell(None, "y") + "</row>")
    error = _rejected(settings, "tax.credit_rating", path)
    assert "A1 to ACOF200000 (20,000 columns × 200,000 rows)" in error


def test_the_fast_scan_and_the_walk_agree_on_a_normal_sheet(settings, monkeypatch):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = settings.inbox / "tax/ok.xlsx"
    path.parent.mkdir(parents=True)
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("纳税信用评价")
    sheet.write_row(1, 0, TAX_HEADER + [f"备注{i}" for i in range(34)])
    for r in range(2, 1502):
        sheet.write_row(r, 0, [f"91370100MA3C{r:06d}", f"公司{r}", "历下区", 2025, "A", "2026-04-01"]
                        + [f"v{r}-{i}" for i in range(34)])
    book.close()
    with zipfile.ZipFile(path) as z:
        walked = limits._walk(z, "xl/worksheets/sheet1.xml")
        with monkeypatch.context() as m:
            m.setattr(limits, "_walk", lambda *_: pytest.fail("the fast scan fell back to the walk"))
            fast = limits.scan(z, "xl/worksheets/sheet1.xml")
    assert (fast.rows, fast.cols) == (walked.rows, walked.cols) == ((1, 1501), (0, 39))
    result = ingest_resource("tax.credit_rating", files=None, settings=settings, run_id="r1")
    assert result.rows == 1500


def test_a_zip_bomb_is_refused(settings, monkeypatch):
    monkeypatch.setattr(limits, "EXPANSION_FLOOR", 1 << 20)
    bomb = b"<sst>" + b" " * (8 << 20) + b"</sst>"
    path = _workbook(settings.inbox / "bomb.xlsx", _header_row(), **{"xl/sharedStrings.xml": bomb})
    error = _rejected(settings, "tax.credit_rating", path)
    assert "xl/sharedStrings.xml would expand to 8,388,619 bytes" in error and "zip bomb" in error


def test_an_opendocument_spreadsheet_is_refused(settings):
    path = settings.inbox / "r.ods"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    assert "OpenDocument spreadsheet (.ods) is not read; save it as .xlsx" in _rejected(settings,
                                                                                      "tax.credit_rating", path)


def test_a_header_only_workbook_lands_nothing(settings):
    path = _workbook(settings.inbox / "empty.xlsx", _header_row())
    result = ingest_resource("tax.credit_rating", files=[path], settings=settings, run_id="r1")
    assert [(b.status, b.rows) for b in result.batches] == [("landed", 0)]
    assert _bronze(settings, "tax.credit_rating") == []


# ---- CSV -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_an_endless_line_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "long.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write(_csv([_row(1)]))
        f.write("x" * (300 << 20))  # 300 MB without a newline
    out = _bounded(f"print(rows('credit.penalty', {str(path)!r}))", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"REJECTED {path}: row 2: a record longer than 8,388,608 bytes")


@pytest.mark.slow
def test_an_unclosed_quote_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "quote.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write(_csv([_row(1), _row(2)]))
        f.write('a,"unclosed\n' + ("x" * 1023 + "\n") * (300 << 10))  # 300 MB inside one quote
    out = _bounded(f"print(rows('credit.penalty', {str(path)!r}))", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"REJECTED {path}: row 3: a record longer than")


@pytest.mark.parametrize("arrow", [True, False])
def test_a_record_too_long_names_its_row_in_both_readers(settings, monkeypatch, arrow):
    monkeypatch.setattr(csv_module, "BLOCK_BYTES", 1 << 14)
    monkeypatch.setattr(csv_module, "MAX_RECORD", 1 << 14)
    if not arrow:
        monkeypatch.setattr(csv_module, "MAX_PENDING", 0)  # every bad row sends the file to csv.reader
    rows = [_row(1)[:3], _row(2), _row(3, facts="x" * (1 << 15)), _row(4)]
    path = _write(settings.inbox / "a.csv", _csv(rows))
    assert "row 3: a record longer than 16,384" in _rejected(settings, "credit.penalty", path)


def test_a_header_of_100000_columns_is_refused(settings):
    path = _write(settings.inbox / "wide.csv", ",".join(f"c{i}" for i in range(100_000)) + "\n1,2\n")
    assert "the header has 100,000 fields, more than the limit of 1,000 columns" in _rejected(
        settings, "credit.penalty", path)


@pytest.mark.parametrize("name, data, reason", [
    ("empty.csv", b"", "the file is empty"),
    ("png.csv", b"\x89PNG\r\n\x1a\n" + bytes(200), "not a text file (it is a PNG image)"),
    ("u16.csv", "\n".join(["a,b,c"] * 50).encode("utf-16-le"), "UTF-16 without a byte-order mark"),
])
def test_worst_files_are_rejected_with_their_name(settings, name, data, reason):
    assert reason in _rejected(settings, "credit.penalty", _write(settings.inbox / name, data))


def test_a_header_only_csv_lands_nothing_and_duplicate_headers_keep_both_values(settings):
    empty = _write(settings.inbox / "header.csv", _csv([]))
    result = ingest_resource("credit.penalty", files=[empty], settings=settings, run_id="r1")
    assert [(b.status, b.rows) for b in result.batches] == [("landed", 0)]
    twice = _write(settings.inbox / "twice.csv", _csv([_row(1) + ["第二个名称", "备注a", "备注b"]],
                                                      HEADER + ["行政相对人名称", "备注", "备注"]))
    ingest_resource("credit.penalty", files=[twice], settings=settings, run_id="r2")
    [row] = _bronze(settings)
    assert row["subject_name"] == "subject_name-1"
    extra = json.loads(row["_extra"])
    assert extra["行政相对人名称"] == "第二个名称" and extra["备注#2"] == "备注b"


def test_a_headerless_file_does_not_quote_its_first_row(settings):
    path = _write(settings.inbox / "noheader.csv", "张三,370102199001011234,13812345678\n李四,1,2\n")
    error = _rejected(settings, "credit.penalty", path)
    assert "is the header row missing?" in error
    assert "张三" not in error and "370102199001011234" not in error and "13812345678" not in error


# ---- JSON ------------------------------------------------------------------------------------

def _person(n: int) -> dict:
    return {"案号": f"（2026）鲁0102执{n}号", "被执行人名称": f"公司{n}", "发布日期": "2026-10-01"}


@pytest.mark.parametrize("text", [
    json.dumps([_person(1), _person(2), 7], ensure_ascii=False, indent=2),
    json.dumps([_person(1), _person(2), 7], ensure_ascii=False),
])
def test_a_json_array_lands_one_row_per_element(settings, monkeypatch, text):
    monkeypatch.setattr(jsonl_module, "CHUNK", 16)  # elements straddle the reads
    path = _write(settings.inbox / "court.json", text)
    result = ingest_resource("court.dishonest", files=[path], settings=settings, run_id="r1")
    assert result.rows == 3
    rows = _bronze(settings, "court.dishonest")
    assert [(r["_row_number"], r["case_no"]) for r in rows] == [
        (1, "（2026）鲁0102执1号"), (2, "（2026）鲁0102执2号"), (3, None)]
    assert rows[2]["_parse_error"] == "invalid JSON: expected an object, got a number"


def test_a_pretty_printed_object_is_one_row(settings):
    path = _write(settings.inbox / "one.json", json.dumps(_person(5), ensure_ascii=False, indent=4))
    ingest_resource("court.dishonest", files=[path], settings=settings, run_id="r1")
    assert [(r["_row_number"], r["case_no"], r["_parse_error"]) for r in _bronze(settings, "court.dishonest")] == [
        (1, "（2026）鲁0102执5号", None)]


def test_a_broken_json_array_is_refused_as_a_whole(settings):
    text = json.dumps([_person(1), _person(2)], ensure_ascii=False, indent=2).replace('"公司2",', '"公司2"')
    error = _rejected(settings, "court.dishonest", _write(settings.inbox / "bad.json", text))
    assert "not JSON lines (one object per line) nor a readable JSON array of objects" in error
    assert "element 2: Expecting ',' delimiter at line 10, column 5" in error


def test_a_json_line_too_long_is_refused_naming_it(settings, monkeypatch):
    monkeypatch.setattr(jsonl_module, "MAX_RECORD", 1000)
    lines = [json.dumps(_person(1), ensure_ascii=False), json.dumps({**_person(2), "失信情形": "x" * 2000})]
    error = _rejected(settings, "court.dishonest", _write(settings.inbox / "c.jsonl", "\n".join(lines)))
    assert "line 2: longer than 1,000 characters" in error


# ---- paths -----------------------------------------------------------------------------------

def test_links_are_never_followed(settings, tmp_path):
    secret = _write(tmp_path / "outside/secret.csv", _csv([_row(1, subject_name="不该读到")]))
    inbox = settings.inbox
    good = _write(inbox / "credit/penalty/good.csv", _csv([_row(1)]))
    (inbox / "credit/penalty/out.csv").symlink_to(secret)
    (inbox / "credit/penalty/in.csv").symlink_to(good)  # inside → inside: refused too
    (inbox / "credit/license").symlink_to(tmp_path / "outside", target_is_directory=True)

    assert discover(inbox, "credit/penalty/*.csv") == [inbox / f"credit/penalty/{n}.csv" for n in ("good", "in",
                                                                                                     "out")]
    assert discover(inbox, "credit/license/*.csv") == [inbox / "credit/license"]
    with pytest.raises(IngestError, match="1 of 1 source"):
        ingest_resource("credit.license", files=None, settings=settings, run_id="r0")
    with pytest.raises(IngestError, match="2 of 3 source"):
        ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    log = {Path(r["source"]).name: r for r in _log(settings)}
    assert log["good.csv"]["status"] == "landed"
    for name in ("in.csv", "out.csv", "license"):
        assert log[name]["status"] == "rejected" and "a symbolic link" in log[name]["error"]
        assert log[name]["source"] in log[name]["error"]
    assert not any("不该读到" in (r["error"] or "") or "secret" in (r["error"] or "") for r in _log(settings))
    assert {r["subject_name"] for r in _bronze(settings)} == {"subject_name-1"}
    # a file named through a linked folder, and a link named explicitly
    with pytest.raises(IngestError, match="reached through .*credit/license, a symbolic link"):
        open_source(inbox / "credit/license/secret.csv", inbox=inbox)
    link = tmp_path / "link.csv"
    link.symlink_to(secret)
    with pytest.raises(IngestError, match="link.csv: a symbolic link"):
        ingest_resource("credit.penalty", files=[link], settings=settings, run_id="r2")


def test_a_pipe_is_not_read(settings):
    path = settings.inbox / "pipe.csv"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert "not a regular file" in _rejected(settings, "credit.penalty", path)


def test_a_file_changed_while_read_lands_nothing(settings, monkeypatch):
    from govlake.ingest import _readers

    path = _write(settings.inbox / "a.csv", _csv([_row(1), _row(2)]))
    real = _readers.read_csv

    def growing(source, facts, resource, asm):
        batches = real(source, facts, resource, asm)
        with path.open("a", encoding="utf-8") as f:  # the department's upload is still running
            f.write(_csv([_row(3)]).split("\r\n", 1)[1])
        return batches

    monkeypatch.setattr(_readers, "read_csv", growing)
    error = _rejected(settings, "credit.penalty", path)
    assert "the file changed while it was being read" in error and "nothing of it landed" in error
