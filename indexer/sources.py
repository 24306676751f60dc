"""Where documents come from: folders of text files, and JSONL corpora in the BEIR layout.

Files that cannot be read as text are skipped and reported through ``on_skip``; they never
stop a run. Paths that cannot work at all (missing, or holding nothing indexable) raise
``SourceError`` before any work starts.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from twinsearch.errors import SourceError
from twinsearch.types import Document

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
CORPUS_SUFFIXES = (".jsonl", ".jsonl.gz")
MAX_TITLE_CHARS = 100

SkipHandler = Callable[[str, str], None]
"""Called with (where, why) for each file or record that is skipped."""


def is_corpus(path: Path) -> bool:
    return path.name.endswith(CORPUS_SUFFIXES)


def _walk(root: Path) -> Iterator[Path]:
    """Text files under ``root``, in a stable order, hidden files and folders left out."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
            yield path


def _title_of(path: Path, text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if path.suffix.lower() in (".md", ".markdown"):
        for line in lines:
            if line.startswith("# "):
                return line[2:].strip()
    if lines and len(lines[0]) <= MAX_TITLE_CHARS and not lines[0].endswith((".", ",", ";")):
        return lines[0].lstrip("# ").strip()
    return path.stem


def read_text_file(path: Path) -> str:
    """The file as text; ``ValueError`` naming why it is not indexable."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError("binary file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise ValueError("empty file")
    return text


@dataclass
class Corpus:
    """Documents from the given paths, streamed; ``done_bytes`` of ``total_bytes`` read so far."""

    paths: list[Path]
    on_skip: SkipHandler = lambda where, why: None
    total_bytes: int = 0
    done_bytes: int = 0
    _plan: list[tuple[Path, Path, list[Path]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for raw in self.paths:
            path = Path(raw).expanduser()
            if not path.exists():
                raise SourceError(f"no such file or folder: {raw}")
            if path.is_dir():
                files = list(_walk(path))
                if not files:
                    raise SourceError(
                        f"no {', '.join(TEXT_SUFFIXES)} files under {raw}; point twinsearch at "
                        "a folder of text files or at a .jsonl corpus"
                    )
                self._plan.append((path, path, files))
            elif path.suffix.lower() in TEXT_SUFFIXES or is_corpus(path):
                self._plan.append((path.parent, path, [path]))
            else:
                raise SourceError(
                    f"cannot index {raw}: give a folder, a {'/'.join(TEXT_SUFFIXES)} file "
                    f"or a {'/'.join(CORPUS_SUFFIXES)} corpus"
                )
        self.total_bytes = sum(_size(f) for _, _, files in self._plan for f in files)

    def __iter__(self) -> Iterator[Document]:
        for root, _, files in self._plan:
            for path in files:
                if is_corpus(path):
                    yield from self._corpus(path)
                else:
                    doc = self._text_file(root, path)
                    self.done_bytes += _size(path)
                    if doc is not None:
                        yield doc

    def _text_file(self, root: Path, path: Path) -> Document | None:
        try:
            text = read_text_file(path)
        except OSError as exc:
            self.on_skip(str(path), f"unreadable: {exc.strerror or exc}")
            return None
        except ValueError as exc:
            self.on_skip(str(path), str(exc))
            return None
        doc_id = path.relative_to(root).as_posix()
        return Document(doc_id, text, _title_of(path, text), str(path.resolve()))

    def _corpus(self, path: Path) -> Iterator[Document]:
        source = str(path.resolve())
        start = self.done_bytes
        try:
            with path.open("rb") as raw:
                stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
                for number, line in enumerate(stream, start=1):
                    self.done_bytes = start + raw.tell()
                    doc = self._record(path, number, line, source)
                    if doc is not None:
                        yield doc
        except (OSError, EOFError) as exc:
            self.on_skip(str(path), f"unreadable: {exc}")
        self.done_bytes = start + _size(path)

    def _record(self, path: Path, number: int, line: bytes, source: str) -> Document | None:
        where = f"{path}:{number}"
        if not line.strip():
            return None
        try:
            record: Any = json.loads(line)
        except ValueError as exc:
            self.on_skip(where, f"not JSON: {exc}")
            return None
        if not isinstance(record, dict) or "_id" not in record:
            self.on_skip(where, 'no "_id" field')
            return None
        title = str(record.get("title") or "")
        text = str(record.get("text") or "")
        if not (title.strip() or text.strip()):
            self.on_skip(where, "empty title and text")
            return None
        fields = {k: v for k, v in record.items() if k not in ("_id", "title", "text")}
        # Title-only records are still searchable: the title is their text.
        return Document(str(record["_id"]), text or title, title, source, fields)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
