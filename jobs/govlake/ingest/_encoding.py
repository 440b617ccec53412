"""Fingerprint a file (sha256) and find its text encoding: UTF-8 (with or without BOM), GBK, GB18030.

One pass hashes the file and checks that it is UTF-8 (Arrow's validation, chunk by chunk). A file that is not
UTF-8 is taken for GBK, unchecked: the read decodes it anyway, and checking first decoded it twice (Python's
GBK codec, ~200 MB/s of one core holding the interpreter lock: 11 s of the 10-million-record city's ingest).
A read that meets a byte GBK does not decode asks :func:`undecodable` what the file is: GB18030 (a superset of
GBK; :class:`Reencode`: read it again as that, nothing of it was committed) or none of them, rejected with the
byte offset of the first bad byte. ``sniff(check=True)`` decides it before any row is read, as a Spark task's
driver must. An empty or binary-looking file is rejected by the sniff. Files are read through their open
:class:`~govlake.ingest._paths.Source` (never reopened by name).
"""

from __future__ import annotations

import codecs
import hashlib
import struct
from dataclasses import dataclass

import pyarrow as pa

from govlake.ingest._paths import Source
from govlake.ingest._results import IngestError

CHUNK = 1 << 20
_MAGIC = {b"PK\x03\x04": "a ZIP/XLSX file", b"\xd0\xcf\x11\xe0": "an old Excel (OLE) file",
          b"%PDF": "a PDF file", b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image"}
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    size: int
    encoding: str | None = None
    """``utf-8``, ``utf-8-sig`` (BOM), ``utf-16`` (BOM), ``gbk`` or ``gb18030``; None for binary formats."""
    has_nul: bool = False
    checked: bool = True
    """False for a file taken for GBK because it is not UTF-8, before any GBK decoder has read it whole."""


class Reencode(Exception):  # noqa: N818  (an instruction, not an error: the file is readable)
    """A file taken for GBK unchecked decodes whole as ``encoding`` (GB18030) and not as GBK: read it again."""

    def __init__(self, encoding: str):
        super().__init__(f"read again as {encoding}")
        self.encoding = encoding


def fingerprint(source: Source) -> FileFacts:
    """sha256 and size of a binary file (XLSX)."""
    path = source.path
    digest, size = hashlib.sha256(), 0
    with source.reader() as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if size == 0:
        raise IngestError(f"{path}: the file is empty", path=path)
    return FileFacts(digest.hexdigest(), size)


class _Utf8:
    """Whether the chunks fed to it, joined, are valid UTF-8 — checked by Arrow's validation of a string array,
    several times faster than Python's decoder (0.07–0.09 s against 0.23 s for a 175 MB export); a character
    split between two chunks is carried into the next."""

    def __init__(self) -> None:
        self.ok, self.carry = True, b""

    def feed(self, chunk: bytes) -> None:
        if not self.ok:
            return
        data = self.carry + chunk if self.carry else chunk
        cut = len(data)
        for back in range(1, min(4, len(data)) + 1):  # a character's lead byte within its last four bytes
            byte = data[-back]
            if byte & 0xC0 == 0x80:  # a continuation byte: look further back
                continue
            need = 2 if 0xC0 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4 if byte >= 0xF0 else 1
            if need > back:
                cut = len(data) - back
            break
        self.carry = data[cut:]
        self.ok = _valid_utf8(memoryview(data)[:cut])

    def end(self) -> bool:
        return self.ok and not self.carry


def _valid_utf8(data: bytes | memoryview) -> bool:
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))  # one string: the whole of ``data``
    array = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def sniff(source: Source, *, check: bool = False) -> FileFacts:
    """sha256, size and encoding of a text file; raises IngestError when it is not readable text. A file that is
    not UTF-8 is GBK unchecked (``checked`` False), or with ``check`` decoded whole to tell GBK, GB18030 and
    neither apart."""
    path = source.path
    digest, size, head, nul = hashlib.sha256(), 0, b"", False
    utf8 = _Utf8()
    with source.reader() as f:
        while chunk := f.read(CHUNK):
            if not head:
                head = chunk[:8192]
            digest.update(chunk)
            nul = nul or b"\x00" in chunk
            size += len(chunk)
            utf8.feed(chunk)
    if size == 0:
        raise IngestError(f"{path}: the file is empty", path=path)
    utf8_ok = utf8.end()
    facts = {"sha256": digest.hexdigest(), "size": size, "has_nul": nul}
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return FileFacts(**facts, encoding=_checked(source, "utf-16"))
    if head.startswith(codecs.BOM_UTF8):
        return FileFacts(**facts, encoding="utf-8-sig" if utf8_ok else _checked(source, "utf-8"))
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise IngestError(f"{path}: not a text file (it is {what})", path=path)
    if _utf16_without_bom(head):
        raise IngestError(f"{path}: looks like UTF-16 without a byte-order mark; send UTF-8, GBK, or UTF-16 "
                          "with its BOM", path=path)
    if sum(head.count(bytes([b])) for b in _CONTROL) > max(8, len(head) // 100):
        raise IngestError(f"{path}: not a text file (binary content in the first {len(head)} bytes)", path=path)
    if utf8_ok:
        return FileFacts(**facts, encoding="utf-8")
    if not check:
        return FileFacts(**facts, encoding="gbk", checked=False)
    if first_error(source, "gbk") is None:
        return FileFacts(**facts, encoding="gbk")
    return FileFacts(**facts, encoding=_gb18030(source))


def _utf16_without_bom(head: bytes) -> bool:
    """NUL bytes on one side of many byte pairs and text on the other: ASCII in UTF-16 (LE or BE)."""
    even, odd = head[0::2], head[1::2]
    zeros, other = (odd, even) if odd.count(0) > even.count(0) else (even, odd)
    if zeros.count(0) < max(8, len(zeros) // 3) or other.count(0) * 10 > zeros.count(0):
        return False
    return sum(other.count(bytes([b])) for b in _CONTROL) * 20 < len(other)


def _checked(source: Source, encoding: str) -> str:
    """``encoding`` when the whole file decodes in it, else IngestError naming the first byte that does not."""
    offset = first_error(source, encoding)
    if offset is not None:
        raise IngestError(f"{source.path}: not valid {encoding.upper()}: undecodable bytes at byte offset "
                          f"{offset}{_on_line(source, offset, encoding)}", path=source.path)
    return encoding


def _gb18030(source: Source) -> str:
    """"gb18030" for a file that is neither UTF-8 nor GBK but decodes as GB18030, else IngestError naming where it
    stops decoding read as UTF-8 or as GB18030, whichever reads further: a UTF-8 export with a few bad bytes
    stops decoding as GB18030 at its first Chinese character, which would send the department to the wrong
    place."""
    offset = first_error(source, "gb18030")
    if offset is None:
        return "gb18030"
    encoding, as_utf8 = "GB18030", first_error(source, "utf-8")
    if as_utf8 is not None and as_utf8 > offset:
        encoding, offset = "UTF-8", as_utf8
    raise IngestError(f"{source.path}: not valid UTF-8, GBK or GB18030: undecodable bytes at byte offset {offset} "
                      f"(line {_line(source, offset)}, read as {encoding})", path=source.path)


def _on_line(source: Source, offset: int, encoding: str) -> str:
    """`` (line N)`` for byte ``offset`` of a file in an ASCII-compatible ``encoding``; nothing for UTF-16."""
    return "" if encoding.startswith("utf-16") else f" (line {_line(source, offset)})"


def _line(source: Source, offset: int) -> int:
    """The line (from 1) that byte ``offset`` is on, in a file whose line feeds are the byte 0x0A."""
    lines, read = 1, 0
    with source.reader() as f:
        while read < offset and (chunk := f.read(min(CHUNK, offset - read))):
            lines += chunk.count(b"\n")
            read += len(chunk)
    return lines


class Undecodable(IngestError):
    """A file that is not in the encoding it was read in, nor (taken for GBK unchecked) in GB18030."""


def undecodable(source: Source, facts: FileFacts) -> Exception | None:
    """What to raise for a read of ``source`` in ``facts.encoding`` that failed: :class:`Undecodable` naming the
    first byte that does not decode, or for a file taken for GBK unchecked :class:`Reencode` when it is GB18030
    and Undecodable when it is not that either (the sniff's words); None when the file decodes whole (the
    failure was something else)."""
    encoding = facts.encoding or "utf-8"
    offset = first_error(source, encoding)
    if offset is None:
        return None
    if not facts.checked:
        try:
            return Reencode(_gb18030(source))
        except IngestError as exc:
            return Undecodable(str(exc), path=source.path)
    return Undecodable(f"{source.path}: undecodable {encoding} bytes at byte offset "
                       f"{offset}{_on_line(source, offset, encoding)}", path=source.path)


def first_error(source: Source, encoding: str) -> int | None:
    """Byte offset of the first byte that does not decode as ``encoding``, or None when all do."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    consumed = 0
    with source.reader() as f:
        while True:
            chunk = f.read(CHUNK)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, not chunk)
            except UnicodeDecodeError as exc:
                return consumed - pending + exc.start
            if not chunk:
                return None
            consumed += len(chunk)

