"""Ingest of files into bronze: encodings, headers, broken rows, idempotency (tiny inputs in tmp_path)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from govlake import storage
from govlake.catalog import get_catalog
from govlake.contracts import bronze_schema
from govlake.ingest import IngestError, ingest_resource
from govlake.ingest import _csv as csv_module

PENALTY = get_catalog().resource("credit.penalty")
HEADER = [i.name for i in PENALTY.items]
WIDTH = len(HEADER)


def _row(n: int, **values: str) -> list[str]:
    """A credit.penalty row in header order: ``<column>-<n>`` unless given."""
    return [values.get(i.column, f"{i.column}-{n}") for i in PENALTY.items]


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def _write(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def _bronze(settings, code: str = "credit.penalty") -> list[dict]:
    res = get_catalog().resource(code)
    path = storage.table_path(settings, "bronze", res.slug)
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: (r["_received_at"], r["_row_number"]))


def _log(settings) -> list[dict]:
    return DeltaTable(str(storage.table_path(settings, "meta", "ingest_log"))).to_pyarrow_table().to_pylist()


def test_gbk_csv_with_embedded_newline_short_row_and_bad_check_char(settings):
    rows = [
        _row(1, facts="第一行\r\n第二行，含“引号”", fine_amount=" 1.50 "),
        _row(2)[:WIDTH - 2],
        _row(3, uscc="91350100M000100Y4Z"),  # wrong check character: bronze keeps it as sent
    ]
    path = _write(settings.city / "credit/penalty/ee_20261120.csv", _csv_text(HEADER, rows), "gbk")

    result = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")

    [batch] = result.batches
    assert (batch.status, batch.encoding, batch.rows, batch.source) == ("landed", "gbk", 3, str(path))
    assert result.rows == 3
    got = _bronze(settings)
    assert [r["_row_number"] for r in got] == [1, 2, 3]
    assert got[0]["facts"] == "第一行\r\n第二行，含“引号”"
    assert got[0]["fine_amount"] == " 1.50 "  # no trimming
    assert got[0]["_parse_error"] is None and got[0]["_extra"] is None
    assert got[1]["_parse_error"] == f"expected {WIDTH} fields, got {WIDTH - 2}"
    assert got[1]["subject_name"] == "subject_name-2" and got[1]["submitted_at"] is None
    assert got[2]["uscc"] == "91350100M000100Y4Z" and got[2]["_parse_error"] is None
    assert {r["_source"] for r in got} == {str(path)}
    assert {r["_resource"] for r in got} == {"credit.penalty"}
    assert {r["_batch_id"] for r in got} == {batch.batch_id}
    assert len({r["_source_hash"] for r in got} | {batch.source_hash}) == 1


def test_bronze_schema_is_the_contract(settings):
    _write(settings.city / "credit/penalty/a.csv", _csv_text(HEADER, [_row(1)]))
    ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    table = DeltaTable(str(storage.table_path(settings, "bronze", "credit_penalty")))
    schema = pa.schema(table.schema().to_arrow())
    assert schema.names == bronze_schema(PENALTY).names
    assert all(f.nullable for f in schema)
    assert schema.field("_received_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("_row_number").type == pa.int64()
    assert {schema.field(i.column).type for i in PENALTY.items} <= {pa.string(), pa.large_string(),
                                                                     pa.string_view()}


def test_utf8_bom_full_width_header_and_unknown_column(settings):
    header = [h.replace("(", "（").replace(")", "）") for h in HEADER] + ["联系电话"]
    header[0] = " " + header[0] + " "
    path = _write(settings.inbox / "x.csv", "\ufeff" + _csv_text(header, [_row(1, fine_amount="2") + ["0531-1"]]))

    result = ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")

    assert result.batches[0].encoding == "utf-8-sig"
    [row] = _bronze(settings)
    assert row["fine_amount"] == "2"  # 罚款金额（万元） matched 罚款金额(万元)
    assert row["subject_name"] == "subject_name-1"  # trimmed header, BOM dropped
    assert row["uscc"] == "uscc-1"
    assert json.loads(row["_extra"]) == {"联系电话": "0531-1"}


def test_utf8_without_bom_long_row_and_alias(settings):
    header = [("罚款金额" if h == "罚款金额(万元)" else h) for h in HEADER]
    _write(settings.city / "credit/penalty/a.csv", _csv_text(header, [_row(1) + ["多余1", "多余2"], _row(2)]))
    result = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    assert result.batches[0].encoding == "utf-8"
    first, second = _bronze(settings)
    assert first["_parse_error"] == f"expected {WIDTH} fields, got {WIDTH + 2}"
    assert json.loads(first["_extra"]) == {"_overflow": ["多余1", "多余2"]}
    assert first["fine_amount"] == "fine_amount-1" and second["_parse_error"] is None


def test_missing_required_header_rejects_the_file(settings):
    header = [h for h in HEADER if h not in ("行政处罚决定书文号", "处罚机关")]
    rows = [[v for h, v in zip(HEADER, _row(1)) if h in header]]
    bad = _write(settings.city / "credit/penalty/bad.csv", _csv_text(header, rows))
    _write(settings.city / "credit/penalty/good.csv", _csv_text(HEADER, [_row(1)]))

    with pytest.raises(IngestError, match="1 of 2 source"):  # after landing the good file
        ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    by_name = {Path(r["source"]).name: r for r in _log(settings) if r["status"] != "landing"}
    assert by_name["good.csv"]["status"] == "landed"
    assert by_name["bad.csv"]["status"] == "rejected"
    assert str(bad) in by_name["bad.csv"]["error"]
    assert "行政处罚决定书文号" in by_name["bad.csv"]["error"] and "处罚机关 (authority)" in by_name["bad.csv"]["error"]
    assert len(_bronze(settings)) == 1

    with pytest.raises(IngestError, match="行政处罚决定书文号") as info:
        ingest_resource("credit.penalty", files=[bad], settings=settings, run_id="r2")
    assert info.value.result.rejected[0].source == str(bad)
    statuses = [(Path(r["source"]).name, r["status"]) for r in _log(settings)]
    assert statuses.count(("bad.csv", "rejected")) == 2


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"\r\n\r\n", "no header row"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, "not a text file"),
    (b"\x00\x01\x02\x03" * 500, "not a text file"),
])
def test_unreadable_files_are_rejected_with_their_name(settings, data, reason):
    path = _write(settings.inbox / "junk.csv", data)
    with pytest.raises(IngestError, match=reason) as info:
        ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    assert str(path) in str(info.value)
    assert storage.open_table(storage.table_path(settings, "bronze", "credit_penalty")) is None


def test_undecodable_bytes_reject_the_file_with_the_offset(settings):
    head = _csv_text(HEADER, [_row(1, subject_name="济南")]).encode("gbk")
    path = _write(settings.inbox / "broken.csv", head + b"\x81\x20," * 3)
    with pytest.raises(IngestError, match=rf"byte offset {len(head)}") as info:
        ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    assert info.value.result.batches[0].encoding is None  # none of the encodings tried


def test_a_utf8_export_with_a_few_bad_bytes_is_rejected_naming_where_its_utf8_breaks(settings):
    """Read as GB18030 such a file breaks at its first Chinese character: the error names the place where it
    stops being UTF-8, on the line the department can look at."""
    good = _csv_text(HEADER, [_row(i, subject_name="济南市历下区") for i in range(1, 301)]).encode("utf-8")
    path = _write(settings.inbox / "mostly_utf8.csv", good + "济南".encode()[:4] + b"\xff,x\r\n")
    with pytest.raises(IngestError) as info:
        ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    [batch] = info.value.result.batches
    assert batch.error == (f"{path}: not valid UTF-8, GBK or GB18030: undecodable bytes at byte offset "
                           f"{len(good) + 3} (line 302, read as UTF-8)")
    assert storage.open_table(storage.table_path(settings, "bronze", "credit_penalty")) is None


def test_a_file_with_a_utf8_bom_and_bad_bytes_names_their_line(settings):
    good = _csv_text(HEADER, [_row(i) for i in range(1, 11)]).encode("utf-8-sig")
    path = _write(settings.inbox / "bom.csv", good + b"\xc3(,x\r\n")
    with pytest.raises(IngestError) as info:
        ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    assert info.value.result.batches[0].error == (
        f"{path}: not valid UTF-8: undecodable bytes at byte offset {len(good)} (line 12)")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 1000, 1 << 20])
def test_the_utf8_check_agrees_with_python_s_decoder_wherever_the_chunks_cut(chunk):
    """The sniff's UTF-8 check (Arrow's validation, a character cut between chunks carried into the next) says what
    Python's strict decoder says of the whole: valid text of 1- to 4-byte characters, truncated, a stray byte, an
    overlong form, a surrogate, a code point past U+10FFFF, a lone continuation byte."""
    import random

    from govlake.ingest._encoding import _Utf8

    rng = random.Random(1)
    text = "".join(rng.choice(["a", "é", "中", "𠀀", "\n", ",", "1"]) for _ in range(20_000)).encode()
    cases = [text, text[:-1], text + b"\xff", text[:5000] + b"\xc0\xaf" + text[5000:], text[:7001] + text[7002:],
             b"", b"abc", "中".encode()[:2], b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", "𠀀".encode() * 3]
    for data in cases:
        check = _Utf8()
        for i in range(0, len(data), chunk):
            check.feed(data[i:i + chunk])
        try:
            data.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        assert check.end() is valid, (chunk, data[:20])


def test_gb18030_only_characters_are_reported_as_gb18030(settings):
    path = _write(settings.inbox / "a.csv", _csv_text(HEADER, [_row(1, subject_name="𠀀记商行")]), "gb18030")
    result = ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    assert result.batches[0].encoding == "gb18030"
    assert _bronze(settings)[0]["subject_name"] == "𠀀记商行"


@pytest.mark.parametrize("where", ["header", "last row"])
def test_a_file_taken_for_gbk_that_is_gb18030_is_read_again_whole(settings, where):
    """A file that is not UTF-8 is read as GBK unchecked; the GB18030-only character of its header, or of its last
    row after batches were already written, has it read again as GB18030: every row once, one landing."""
    rows = [_row(i, subject_name="济南某某商行") for i in range(1, 70_001)]
    header = HEADER + (["备注𠀀"] if where == "header" else [])
    if where == "last row":
        rows[-1] = _row(70_000, subject_name="𠀀记商行")
    else:
        rows = [r + ["附"] for r in rows]
    path = _write(settings.inbox / "a.csv", _csv_text(header, rows), "gb18030")
    assert len(path.read_bytes()) > 2 * csv_module.BLOCK_BYTES  # the last row is read after two batches

    [batch] = ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1").batches
    assert (batch.status, batch.encoding, batch.rows) == ("landed", "gb18030", 70_000)
    landed = _bronze(settings)
    assert sorted(r["_row_number"] for r in landed) == list(range(1, 70_001))
    assert {r["_batch_id"] for r in landed} == {batch.batch_id}
    if where == "header":
        assert json.loads(landed[0]["_extra"]) == {"备注𠀀": "附"}
    else:
        assert [r["subject_name"] for r in landed if r["_row_number"] == 70_000] == ["𠀀记商行"]
    assert sorted(r["status"] for r in _log(settings)) == ["landed", "landing"]
    folder = storage.table_path(settings, "bronze", "credit_penalty")
    on_disk = {p.name for p in folder.rglob("*.parquet")}
    assert on_disk == {Path(f).name for f in storage.open_table(folder).file_uris()}  # the first read's are gone


def test_a_file_neither_gbk_nor_gb18030_is_rejected_after_its_rows_were_read(settings):
    rows = _csv_text(HEADER, [_row(i, subject_name="济南") for i in range(1, 70_001)]).encode("gbk")
    path = _write(settings.inbox / "broken.csv", rows + b"\x81\x20,x\r\n")
    with pytest.raises(IngestError) as info:
        ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    [batch] = info.value.result.batches
    assert (batch.error, batch.encoding) == (
        f"{path}: not valid UTF-8, GBK or GB18030: undecodable bytes at byte offset {len(rows)} (line 70002, read as "
        "GB18030)", None)
    assert storage.open_table(storage.table_path(settings, "bronze", "credit_penalty")) is None
    assert sorted(r["status"] for r in _log(settings)) == ["landing", "rejected"]


def test_the_next_file_sniffed_ahead_is_closed_when_the_ingest_stops(settings, monkeypatch):
    """Each file is hashed and sniffed on a thread while the one before lands; an ingest stopped by an error leaves
    no file of the inbox open."""
    from govlake.ingest import _ingest

    paths = [_write(settings.city / f"credit/penalty/{n}.csv", _csv_text(HEADER, [_row(1)]), "gbk") for n in "abc"]
    sniffed, second = [], threading.Event()
    real = _ingest._Lander.sniffed

    def sniff(self, path):
        sniffed.append(path.name)
        if len(sniffed) == 2:
            second.set()
        return real(self, path)

    def land(*_args):
        assert second.wait(10)  # the next file's sniff under way (a sniff not started yet is cancelled)
        raise OSError("disk gone")

    monkeypatch.setattr(_ingest._Lander, "sniffed", sniff)
    monkeypatch.setattr(_ingest._Lander, "_land", land)

    with pytest.raises(OSError, match="disk gone"):
        ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    assert sniffed == ["a.csv", "b.csv"]  # the second one ahead, while the first was (to be) landed
    open_files = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not open_files & {str(p) for p in paths}


def test_reingesting_the_same_file_adds_nothing(settings):
    first = _write(settings.city / "credit/penalty/a.csv", _csv_text(HEADER, [_row(1), _row(2)]), "gbk")
    ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    copy = settings.inbox / "renamed.csv"
    shutil.copy(first, copy)

    again = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r2")
    explicit = ingest_resource("credit.penalty", files=[copy], settings=settings, run_id="r3")

    assert [b.status for b in again.batches + explicit.batches] == ["skipped_already_ingested"] * 2
    assert again.rows == explicit.rows == 0
    assert len(_bronze(settings)) == 2
    assert [r["status"] for r in _log(settings)].count("landed") == 1


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(settings, monkeypatch):
    from govlake.ingest import _readers

    path = _write(settings.city / "credit/penalty/a.csv", _csv_text(HEADER, [_row(1), _row(2)]), "gbk")
    ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    read = []
    real_sniff = _readers.sniff
    monkeypatch.setattr(_readers, "sniff", lambda s, **kw: read.append(s.path) or real_sniff(s, **kw))

    logged = storage.open_table(storage.table_path(settings, "meta", "ingest_log")).version()
    again = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r2")
    assert [b.status for b in again.batches] == ["skipped_already_ingested"] and read == []
    # nor logged again: the log holds its landing, an ingest of an inbox of kept files commits nothing
    assert storage.open_table(storage.table_path(settings, "meta", "ingest_log")).version() == logged
    # touched (same bytes, new mtime): read once, recognised by its hash
    path.touch()
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    touched = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r3")
    assert [b.status for b in touched.batches] == ["skipped_already_ingested"] and read == [path]
    assert [r["status"] for r in _log(settings) if r["run_id"] == "r3"] == ["skipped_already_ingested"]
    # rewritten with another row: landed
    _write(path, _csv_text(HEADER, [_row(1), _row(2), _row(3)]), "gbk")
    changed = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r4")
    assert [b.status for b in changed.batches] == ["landed"] and changed.rows == 3


def test_interrupted_landing_is_settled_from_bronze(settings, monkeypatch):
    from govlake.ingest import _ingest

    path = _write(settings.city / "credit/penalty/a.csv", _csv_text(HEADER, [_row(1)]))
    real = _ingest._Lander._record

    def die_after_bronze(self, batch, received=None, *, status=None):
        if batch.status == "landed" and status is None:
            raise KeyboardInterrupt  # the process dies between the bronze and the log commit
        return real(self, batch, received, status=status)

    monkeypatch.setattr(_ingest._Lander, "_record", die_after_bronze)
    with pytest.raises(KeyboardInterrupt):
        ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    monkeypatch.setattr(_ingest._Lander, "_record", real)

    result = ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r2")
    assert result.batches[0].status == "skipped_already_ingested"
    assert len(_bronze(settings)) == 1
    assert {(r["status"], r["error"]) for r in _log(settings) if r["run_id"] == "r2"} == {
        ("landed", "outcome recovered from bronze")}


@pytest.mark.parametrize("max_pending", [50_000, 3])
def test_rows_across_blocks_keep_their_numbers(settings, monkeypatch, max_pending):
    """Short rows among good ones across Arrow blocks; with max_pending=3 the run of short rows
    from row 200 on sends the rest of the file through csv.reader."""
    monkeypatch.setattr(csv_module, "BLOCK_BYTES", 2048)
    monkeypatch.setattr(csv_module, "MAX_PENDING", max_pending)
    rows = [_row(n) if n % 7 and n < 200 else _row(n)[: n % 5 + 1] for n in range(1, 301)]
    _write(settings.city / "credit/penalty/a.csv", _csv_text(HEADER, rows))
    result = ingest_resource("credit.penalty", files=None, settings=settings, run_id="r1")
    got = sorted(_bronze(settings), key=lambda r: r["_row_number"])
    assert result.rows == 300
    assert [r["_row_number"] for r in got] == list(range(1, 301))
    assert all(r["subject_name"] == f"subject_name-{r['_row_number']}" for r in got)
    short = [r["_row_number"] for r in got if r["_parse_error"]]
    assert short == [n for n in range(1, 301) if n % 7 == 0 or n >= 200]


def test_arrow_rows_equal_python_csv_records(settings):
    """The rows Arrow parses are exactly the records csv.reader gives (quotes, CR/LF, blank lines)."""
    people = get_catalog().resource("psb.population")
    lines = [
        ",".join(i.name for i in people.items),
        'a,"b ""quoted"" ,x",c,d,e,f,g',
        "",
        ' lead , trail ,"multi\nline\r\nfield",d,e,f,g',
        'q"in"side,"",,,,,',
        "x,y",
        '"a","b","c","d","e","f","g"',
        '"a"tail,b,c,d,e,f,g,h,"i"',
        "ok,ok,ok,ok,ok,ok,ok",
    ]
    text = "\r\n".join(lines[:5]) + "\n" + "\r".join(lines[5:])  # mixed line endings, no final one
    path = _write(settings.inbox / "t.csv", text)
    ingest_resource("psb.population", files=[path], settings=settings, run_id="r1")
    got = sorted(_bronze(settings, "psb.population"), key=lambda r: r["_row_number"])

    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r][1:]
    assert [r["_row_number"] for r in got] == list(range(1, len(records) + 1))
    for row, record in zip(got, records, strict=True):
        values = [row[i.column] for i in people.items]
        assert values == (record + [None] * 7)[:7]
        assert (row["_parse_error"] is None) == (len(record) == 7)


def test_tab_separated_file(settings):
    text = "\t".join(HEADER) + "\n" + "\t".join(_row(1, facts="a,b")) + "\n"
    path = _write(settings.inbox / "tabs.txt", text, "gbk")
    ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    assert _bronze(settings)[0]["facts"] == "a,b"


def test_xlsx_with_title_row_dates_and_numbers(settings):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = settings.city / "tax/ratings_2025.xlsx"
    path.parent.mkdir(parents=True)
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("说明").write(0, 0, "填报说明")
    sheet = book.add_worksheet("纳税信用评价")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write(0, 0, "2025年度纳税信用评价结果")
    sheet.write_row(1, 0, ["纳税人识别号", "纳税人名称", "注册地址", "评价年度", "纳税信用级别", "评价日期", "备注"])
    sheet.write_row(2, 0, ["91370100MA3C000001", "甲公司", "历下区", 2025, "A"])
    sheet.write_datetime(2, 5, dt.datetime(2026, 4, 1), date)
    sheet.write_row(2, 6, [12.5])
    sheet.write_row(4, 0, ["91370100MA3C000002", "乙公司", "", 2025.0, "B", "2026/04/02", ""])
    book.close()

    result = ingest_resource("tax.credit_rating", files=None, settings=settings, run_id="r1")

    assert [(b.status, b.rows) for b in result.batches] == [("landed", 2)]
    first, second = _bronze(settings, "tax.credit_rating")
    assert (first["_row_number"], second["_row_number"]) == (1, 3)  # sheet row − header row
    assert (first["year"], first["rated_on"], first["rating"]) == ("2025", "2026-04-01", "A")
    assert json.loads(first["_extra"]) == {"备注": "12.5"}
    assert (second["year"], second["rated_on"], second["address"]) == ("2025", "2026/04/02", "")
    assert json.loads(second["_extra"]) == {"备注": ""}


def test_xlsx_without_the_catalog_sheet_is_rejected(settings):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = settings.inbox / "r.xlsx"
    path.parent.mkdir(parents=True)
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Sheet1").write(0, 0, "纳税人识别号")
    book.close()
    with pytest.raises(IngestError, match="no sheet named '纳税信用评价'.*Sheet1"):
        ingest_resource("tax.credit_rating", files=[path], settings=settings, run_id="r1")


def test_jsonl_with_a_broken_line(settings):
    lines = [
        ('{"统一社会信用代码": "91370100MA3C000001", "单位名称": "甲公司", "费款所属期": "202609", '
         '"参保人数": 12, "应缴金额": 1200.50, "实缴金额": 1200.50, "欠费金额": 0, "经办人": "张三"}'),
        "",
        '{"统一社会信用代码": "91370100MA3C000002", "单位名称": "乙公司", "费款所属期": ',
        '{"uscc": "91370100MA3C000003", "name": "丙公司", "period": "202609", "insured_count": null}',
        "[1, 2]",
    ]
    _write(settings.city / "hrss/2026-09.jsonl", "\r\n".join(lines) + "\r\n")

    result = ingest_resource("hrss.social_insurance", files=None, settings=settings, run_id="r1")

    assert result.rows == 4
    rows = {r["_row_number"]: r for r in _bronze(settings, "hrss.social_insurance")}
    assert sorted(rows) == [1, 3, 4, 5]
    assert (rows[1]["insured_count"], rows[1]["due_amount"], rows[1]["arrears"]) == ("12", "1200.50", "0")
    assert json.loads(rows[1]["_extra"]) == {"经办人": "张三"}
    assert rows[3]["_parse_error"].startswith("invalid JSON: ")
    assert json.loads(rows[3]["_extra"]) == {"_raw": lines[2]}
    assert rows[3]["uscc"] is None
    assert (rows[4]["uscc"], rows[4]["insured_count"], rows[4]["_parse_error"]) == ("91370100MA3C000003", None, None)
    assert rows[5]["_parse_error"] == "invalid JSON: expected an object, got an array"


@pytest.mark.parametrize("first", ["丁公司", "𠀀公司"])  # the GB18030-only character on the first line or the last
def test_jsonl_in_gb18030_is_read_again_whole(settings, first):
    lines = [json.dumps({"统一社会信用代码": f"91370100MA3C{n:06d}", "单位名称": first if n == 1 else "甲公司"},
                        ensure_ascii=False) for n in range(1, 20_001)]
    lines[-1] = lines[-1].replace("甲公司", "𠀀记")
    path = _write(settings.city / "hrss/2026-10.jsonl", "\n".join(lines) + "\n", "gb18030")

    [batch] = ingest_resource("hrss.social_insurance", files=None, settings=settings, run_id="r1").batches
    assert (batch.status, batch.encoding, batch.rows) == ("landed", "gb18030", 20_000)
    rows = {r["_row_number"]: r for r in _bronze(settings, "hrss.social_insurance")}
    assert sorted(rows) == list(range(1, 20_001))
    assert (rows[1]["name"], rows[20_000]["name"]) == (first, "𠀀记")
    assert str(path) == batch.source


def test_nul_byte_lands_flagged(settings):
    text = _csv_text(HEADER, [_row(1), _row(2, facts="坏\x00字节"), _row(3)[:3]])
    text = text.replace("subject_name-3", "subject\x00name-3")
    path = _write(settings.inbox / "nul.csv", text, "gbk")
    ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    got = {r["_row_number"]: r for r in _bronze(settings)}
    assert got[1]["_parse_error"] is None
    assert (got[2]["facts"], got[2]["_parse_error"]) == ("坏\x00字节", "NUL byte in a field")
    assert got[3]["_parse_error"] == f"expected {WIDTH} fields, got 3; NUL byte in a field"


def test_utf16_with_bom(settings):
    path = _write(settings.inbox / "u16.csv", _csv_text(HEADER, [_row(1, subject_name="甲")]), "utf-16")
    result = ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    assert result.batches[0].encoding == "utf-16"
    assert _bronze(settings)[0]["subject_name"] == "甲"
