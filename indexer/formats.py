"""Reading one file of each supported format into documents.

A file that cannot be read raises ``Skip`` with the reason; records inside a corpus file
that cannot be used are reported one by one and the rest are read.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

MAX_TITLE_CHARS = 100
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".tsv")
DOCUMENT_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
"""Formats found by walking a folder; record files are read when named or included."""


class Skip(Exception):
    """This file (or record) is not indexable; the message says why."""


@dataclass(frozen=True)
class Fields:
    """Which record fields (JSONL/JSON keys, CSV columns) hold the id, title and text."""

    id: str = "_id"
    title: str = "title"
    text: str = "text"


@dataclass(frozen=True)
class Parsed:
    """A document as read from a file, before it gets its id and file metadata."""

    text: str
    title: str
    key: str | None = None
    """The record's own id, for records; None for whole-file documents."""
    fields: dict[str, Any] | None = None
    number: int = 0
    """The record's line (JSONL, CSV) or position (JSON array) in its file."""


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


SNIFF_BYTES = 8192
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def is_text(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` holds text, as ``decode`` will read it:
    no NUL byte (but UTF-16 with its byte-order mark), and a known encoding."""
    if head.startswith(_UTF16_BOMS):
        return True
    if b"\x00" in head[:SNIFF_BYTES]:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:
            return True  # a character cut at the end of the sample
    from charset_normalizer import from_bytes

    return from_bytes(head).best() is not None


def _legacy(data: bytes, bad_byte: int) -> str:
    """Text in a legacy encoding. Windows-1252 (Latin-1's superset) first, as browsers read
    unlabelled text, when it reads without a sign of mojibake by charset-normalizer's own
    measure: on short Western text the detector's guesses are unreliable (a Latin-1
    "Jörg" came back as Shift JIS). Otherwise the detector's best guess."""
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    try:
        western = data.decode("cp1252")
        if mess_ratio(western[:SNIFF_BYTES]) == 0.0:
            return western
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise Skip(f"not text in any known encoding (byte {bad_byte})")
    return str(best)


def decode(data: bytes) -> str:
    """Text in UTF-8 (with or without a BOM), UTF-16 with a BOM, or another encoding as
    charset-normalizer detects it (Latin-1, Windows-1252, Shift JIS...)."""
    if data.startswith(_UTF16_BOMS):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in data[:SNIFF_BYTES]:
        raise Skip("binary file")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            text = _legacy(data, exc.start)
    if not text.strip():
        raise Skip("empty file")
    return text


def _first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            if len(line) <= MAX_TITLE_CHARS and not line.endswith((".", ",", ";", ":")):
                return line.lstrip("# ").strip()
            break
    return fallback


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def _text_title(path: Path, text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        for line in lines:
            if line.startswith("# "):
                return line[2:].strip()
    if suffix == ".rst":
        for above, line in zip(lines, lines[1:], strict=False):
            if above.strip() and _RST_UNDERLINE.match(line) and not _RST_UNDERLINE.match(above):
                return above.strip()
    return _first_line_title(text, path.stem)


def read_text(path: Path, data: bytes) -> Iterator[Parsed]:
    text = decode(data)
    yield Parsed(text, _text_title(path, text))


GZIP_SUFFIX = ".gz"
"""A gzip-compressed text file (``changelog.Debian.gz``, ``README.gz``): read as the text
it holds (a ``.jsonl.gz`` corpus is a record file)."""
MAX_GUNZIPPED = 64 * 1024 * 1024


def gunzip(data: bytes, limit: int = MAX_GUNZIPPED) -> bytes:
    """What gzip ``data`` holds, up to ``limit`` bytes; more is refused (a file that
    expands without bound is no document)."""
    inflate = zlib.decompressobj(wbits=47)  # gzip or zlib headers
    try:
        out = inflate.decompress(data, limit)
    except zlib.error as exc:
        raise Skip(f"not gzip ({exc})") from None
    if inflate.unconsumed_tail:
        raise Skip(f"more than {limit / 2**20:.0f} MiB of text once decompressed")
    return out


def read_gzipped_text(path: Path, data: bytes) -> Iterator[Parsed]:
    """A gzip-compressed text file, titled as the file it compresses would be."""
    yield from read_text(path.with_name(path.stem), gunzip(data))


def read_html(path: Path, data: bytes) -> Iterator[Parsed]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode(data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    text = "\n".join(line for line in lines if line)
    if not text:
        raise Skip("no text in the HTML body")
    yield Parsed(text, title or _first_line_title(text, path.stem))


def read_pdf(path: Path, data: bytes) -> Iterator[Parsed]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Skip("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise Skip(f"unreadable PDF: {exc}") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise Skip("no text layer in the PDF (scanned images?)")
    yield Parsed(text, str(meta_title).strip() or _first_line_title(text, path.stem))


def _typed(cell: Any) -> Any:
    """CSV cells are text; numbers among them become numbers, so that ranges work."""
    if not isinstance(cell, str):
        return cell
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def _record(
    raw: Any,
    fields: Fields,
    path: Path,
    number: int,
    on_skip: Callable[[str, str], None],
    typed: bool = False,
) -> Parsed | None:
    where = f"{path}:{number}"
    if not isinstance(raw, dict):
        on_skip(where, "not an object")
        return None
    title = str(raw.get(fields.title) or "").strip()
    text = str(raw.get(fields.text) or "").strip()
    if not (title or text):
        on_skip(where, f'no text in "{fields.text}" or "{fields.title}"')
        return None
    key = raw.get(fields.id)
    extra = {k: v for k, v in raw.items() if k not in (fields.id, fields.title, fields.text)}
    if typed:
        extra = {k: _typed(v) for k, v in extra.items()}
    # Title-only records are still searchable: the title is their text.
    return Parsed(text or title, title, None if key in (None, "") else str(key), extra, number)


def read_records(
    path: Path, stream: IO[bytes], fields: Fields, on_skip: Callable[[str, str], None]
) -> Iterator[Parsed]:
    """Records of a JSONL, JSON (an array of objects, or one object), CSV or TSV file."""
    suffix = suffix_of(path)
    if suffix == ".jsonl.gz":
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=stream))
    if suffix in (".jsonl", ".jsonl.gz"):
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError as exc:
                on_skip(f"{path}:{number}", f"not JSON: {exc}")
                continue
            parsed = _record(raw, fields, path, number, on_skip)
            if parsed:
                yield parsed
    elif suffix == ".json":
        try:
            data = json.loads(decode(stream.read()))
        except ValueError as exc:
            raise Skip(f"not JSON: {exc}") from None
        for number, raw in enumerate(data if isinstance(data, list) else [data], start=1):
            parsed = _record(raw, fields, path, number, on_skip)
            if parsed:
                yield parsed
    else:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            reader = csv.DictReader(text, delimiter="\t" if suffix == ".tsv" else ",")
            if reader.fieldnames is None or fields.text not in reader.fieldnames:
                raise Skip(f'no "{fields.text}" column (set --text-field)')
            for number, row in enumerate(reader, start=2):
                parsed = _record(row, fields, path, number, on_skip, typed=True)
                if parsed:
                    yield parsed
        finally:
            text.detach()  # the caller owns and closes the file
