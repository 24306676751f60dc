"""Documents as the collection holds them: where a chunk is in lines, a document found again
by the id a search shows, its text put back together from its chunks, and whether its file
still says what was indexed.

Lines are counted as the file counts them: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end
one (``str.splitlines`` would also break at form feeds and Unicode separators, which
editors do not). Columns are characters (code points), a tab one of them; both from 1.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from twinsearch.errors import ConfigError, DocumentNotFound
from twinsearch.nouns import AROUND_LINES, Document
from twinsearch.stores import Match, Store

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def content_sha(doc: Document) -> str:
    """What a document says, hashed: its title, text and fields."""
    digest = hashlib.sha256()
    for part in (doc.title, doc.text, json.dumps(doc.fields, sort_keys=True, default=str)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Place:
    """Where a span of a document is: the line and column of its first character and the
    line of its last, all from 1."""

    line: int
    column: int
    end_line: int


class Lines:
    """A text's line starts, found in one pass, so that any offset into it becomes a line
    and column by a binary search."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in LINE_BREAK.finditer(text))]

    def line_of(self, offset: int) -> int:
        return bisect_right(self.starts, offset)

    def place(self, start: int, end: int) -> Place:
        line = self.line_of(start)
        last = self.line_of(max(end - 1, start))
        return Place(line, start - self.starts[line - 1] + 1, last)


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without their breaks; a break at the very end opens no line."""
    lines = LINE_BREAK.split(text)
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


def shown_id(root: str, doc_id: str) -> str:
    """A document's id with the name of the folder it was indexed from, where ids alone are
    ambiguous: ``zstd/README.md`` and ``openssl/README.md``."""
    root_path = PurePath(root)
    return doc_id if root_path.name == doc_id else f"{root_path.name}/{doc_id}"


CHUNK_FIELDS = (
    "doc_id",
    "root",
    "source",
    "title",
    "chunk",
    "text",
    "start",
    "end",
    "line",
    "column",
    "end_line",
    "content_sha",
)


@dataclass(frozen=True)
class StoredDocument:
    """A document as its chunks hold it."""

    doc_id: str
    root: str
    source: str
    title: str
    content_sha: str
    chunks: tuple[dict[str, Any], ...]
    """The chunks' payloads (``CHUNK_FIELDS``), in order."""

    @property
    def shown_id(self) -> str:
        return shown_id(self.root, self.doc_id)

    @property
    def whole_file(self) -> bool:
        """Whether it is all of its file (records of a corpus are not): its id is then the
        file's path under the folder indexed, or the file's name when it was named alone."""
        root, source = PurePath(self.root), PurePath(self.source)
        return source == root / self.doc_id or (source == root and self.doc_id == root.name)

    @property
    def text(self) -> str:
        """The text from its chunks, which overlap. Between chunks, and before the first,
        only whitespace can be missing (tokens cover the rest); it is put back as line
        breaks where the chunks' lines say there were some, else as spaces, so that lines
        keep their numbers and offsets their places."""
        parts: list[str] = []
        at = 0
        previous_line = 1
        for chunk in self.chunks:
            start, end, text = int(chunk["start"]), int(chunk["end"]), str(chunk["text"])
            if start > at:
                parts.append(_gap(start - at, previous_line, chunk))
            if end > at:
                parts.append(text[max(at - start, 0) :])
                at = end
                previous_line = int(chunk.get("end_line") or previous_line)
        return "".join(parts)


def _gap(length: int, previous_line: int, chunk: dict[str, Any]) -> str:
    line, column = chunk.get("line"), chunk.get("column")
    if line is None or column is None or int(line) <= previous_line:
        return " " * length
    return "\n" * (int(line) - previous_line) + " " * (int(column) - 1)


def _matches(store: Store, doc_id: str, root_name: str | None) -> list[tuple[str, str]]:
    found = []
    for _, payload in store.scroll(("root",), [Match("doc_id", doc_id), Match("chunk", 0)]):
        root = str(payload.get("root", ""))
        if root_name is None or PurePath(root).name == root_name:
            found.append((root, doc_id))
    return found


def _of_file(store: Store, path: str) -> list[tuple[str, str]]:
    """The documents that are all of the file ``path`` (records of it are not)."""
    found = []
    for _, payload in store.scroll(("root", "doc_id"), [Match("source", path), Match("chunk", 0)]):
        root, doc_id = str(payload.get("root", "")), str(payload.get("doc_id", ""))
        stored = StoredDocument(doc_id, root, path, "", "", ())
        if stored.whole_file:
            found.append((root, doc_id))
    return found


def find(store: Store, shown: str, folder: PurePath | None = None) -> StoredDocument:
    """The document a search shows as ``shown``: its id, ``FOLDER/id`` where the id alone is
    ambiguous, or (given the ``folder`` relative paths start from) its file's path. Raises
    ``DocumentNotFound``, or ``ConfigError`` listing the choices."""
    keys = set(_matches(store, shown, None))
    if "/" in shown:
        root_name, doc_id = shown.split("/", 1)
        keys.update(_matches(store, doc_id, root_name))
    if folder is not None and not keys:
        keys.update(_of_file(store, str(Path(folder, shown).resolve())))
    if not keys:
        raise DocumentNotFound(
            f"no document {shown!r} in collection {store.name!r}; use an id as "
            "`twinsearch search` shows it (or pass the collection with --collection NAME)"
        )
    if len(keys) > 1:
        choices = ", ".join(sorted(shown_id(root, doc_id) for root, doc_id in keys))
        raise ConfigError(f"{shown!r} is more than one document; name one of: {choices}")
    [(root, doc_id)] = keys
    return read_chunks(store, root, doc_id)


def read_chunks(store: Store, root: str, doc_id: str) -> StoredDocument:
    chunks = sorted(
        (payload for _, payload in store.scroll(CHUNK_FIELDS, _key(root, doc_id))),
        key=lambda payload: int(payload.get("chunk", 0)),
    )
    # Points beyond the first chunk's count are a longer old version's, about to go.
    first = chunks[0] if chunks else {}
    return StoredDocument(
        doc_id=doc_id,
        root=root,
        source=str(first.get("source", "")),
        title=str(first.get("title", "")),
        content_sha=str(first.get("content_sha", "")),
        chunks=tuple(c for c in chunks if str(c.get("content_sha", "")) == first["content_sha"]),
    )


def _key(root: str, doc_id: str) -> list[Match]:
    return [Match("root", root), Match("doc_id", doc_id)]


Reread = Callable[[str, str], Document | None]
"""(source, root) -> the file's document as indexing reads it now; None if it no longer
reads as one document. Raises ``OSError`` when the file cannot be read."""


@dataclass(frozen=True)
class Fetched:
    """A document's text, and where it came from: ``file``, or ``index`` and why."""

    document: StoredDocument
    text: str
    origin: str
    why: str = ""

    @property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    def window(self, first: int, count: int) -> list[str]:
        """``count`` lines from line ``first`` (from 1), fewer at the end."""
        lines = self.lines
        if not 1 <= first <= len(lines):
            raise ConfigError(
                f"no line {first} in {self.document.doc_id}: it has lines 1 to {len(lines)}"
            )
        return lines[first - 1 : first - 1 + count]


def fetch_at(
    store: Store, wanted: str, reread: Reread, folder: PurePath | None = None
) -> tuple[Fetched, int | None]:
    """``fetch`` for ``ID`` or ``ID:LINE`` (also ``PATH:LINE``, as search shows a hit), and
    the line asked for. An id that itself ends in ``:N`` (a record's: ``corpus.jsonl:3``)
    is taken whole first."""
    try:
        return fetch(store, wanted, reread, folder), None
    except DocumentNotFound:
        at_line = re.fullmatch(r"(.+):(\d+)", wanted)
        if at_line is None:
            raise
    return fetch(store, at_line[1], reread, folder), int(at_line[2])


def fetch(store: Store, shown: str, reread: Reread, folder: PurePath | None = None) -> Fetched:
    """The document ``shown``, from its file while that still holds what was indexed, else
    from the collection.

    The file is read again through indexing's own reader and hashed as indexing hashes it:
    the hash is then equal exactly when the file says what was indexed, whatever its format
    (an HTML file's text, not its markup), and what is shown is that text. Comparing raw
    bytes could not be done (the collection keeps no hash of them), and comparing the text
    rebuilt from chunks would miss edits to whitespace between them."""
    stored = find(store, shown, folder)
    if not stored.whole_file:
        return Fetched(stored, stored.text, "index", f"a record of {stored.source}")
    try:
        current = reread(stored.source, stored.root)
    except FileNotFoundError:
        return Fetched(stored, stored.text, "index", "the file no longer exists")
    except OSError as exc:
        return Fetched(stored, stored.text, "index", f"the file cannot be read ({exc.strerror})")
    if current is None or content_sha(current) != stored.content_sha:
        return Fetched(stored, stored.text, "index", "the file has changed since it was indexed")
    return Fetched(stored, current.text, "file")


def described(fetched: Fetched, line: int | None, count: int | None) -> dict[str, Any]:
    """What `get --json` (and the MCP tool) answers: the document, and its text whole, or
    ``count`` lines from ``line`` (``AROUND_LINES`` by default when a line is given)."""
    document = fetched.document
    shown: dict[str, Any] = {
        "id": document.doc_id,
        "root": document.root,
        "source": document.source,
        "title": document.title,
        "from": fetched.origin,
        "why": fetched.why or None,
    }
    if line is None and count is None:
        shown["text"] = fetched.text
    else:
        first = line or 1
        shown.update(start_line=first, lines=fetched.window(first, count or AROUND_LINES))
    return shown


def numbered(lines: Sequence[str], first: int) -> Iterable[str]:
    """``lines`` as ``cat -n`` shows them, the first numbered ``first``."""
    for number, line in enumerate(lines, start=first):
        yield f"{number:>6}\t{line}"
