"""What a run has to do: which documents are new, changed, unchanged, or gone.

Decided by content hashes, not timestamps: a file touched but not edited is unchanged. A
document counts as stored only when its last chunk carries the same hash as its first, so a
run killed half-way through a document leaves it to be indexed again, never half-indexed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from twinsearch.stores import Store
from twinsearch.types import Document

MANIFEST_FIELDS = ("doc_id", "chunk", "n_chunks", "content_sha", "root", "source")


class Change(str, Enum):
    new = "new"
    changed = "changed"
    unchanged = "unchanged"
    removed = "removed"


def content_sha(doc: Document) -> str:
    digest = hashlib.sha256()
    for part in (doc.title, doc.text, json.dumps(doc.fields, sort_keys=True, default=str)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


@dataclass
class StoredDoc:
    sha: str = ""
    n_chunks: int = 0
    root: str = ""
    source: str = ""
    last_sha: str | None = None
    """The hash on chunk ``n_chunks - 1``: equal to ``sha`` once the document is complete."""
    stale: bool = False
    """Points beyond ``n_chunks`` remain from an older, longer version."""

    @property
    def complete(self) -> bool:
        return bool(self.sha) and self.last_sha == self.sha


def load_manifest(store: Store) -> dict[str, StoredDoc]:
    """One entry per stored document, from one pass over the collection's payloads."""
    docs: dict[str, StoredDoc] = {}
    beyond: dict[str, int] = {}
    last: dict[str, dict[int, str]] = {}
    for _, payload in store.scroll(MANIFEST_FIELDS):
        doc_id = str(payload.get("doc_id"))
        chunk = int(payload.get("chunk", 0))
        entry = docs.setdefault(doc_id, StoredDoc())
        last.setdefault(doc_id, {})[chunk] = str(payload.get("content_sha", ""))
        beyond[doc_id] = max(beyond.get(doc_id, -1), chunk)
        if chunk == 0:
            entry.sha = str(payload.get("content_sha", ""))
            entry.n_chunks = int(payload.get("n_chunks", 0))
            entry.root = str(payload.get("root", ""))
            entry.source = str(payload.get("source", ""))
    for doc_id, entry in docs.items():
        entry.last_sha = last[doc_id].get(entry.n_chunks - 1)
        entry.stale = beyond[doc_id] >= entry.n_chunks
    return docs


def classify(doc: Document, sha: str, manifest: dict[str, StoredDoc]) -> Change:
    stored = manifest.get(doc.doc_id)
    if stored is None:
        return Change.new
    return Change.unchanged if stored.complete and stored.sha == sha else Change.changed


def removed(
    manifest: dict[str, StoredDoc],
    seen: Collection[str],
    roots: Collection[str],
    unread: Collection[str],
) -> list[str]:
    """Stored documents from the roots indexed now that this run did not meet.

    A document whose file was skipped this time (unreadable, say) is kept: a failed read is
    not a deletion.
    """
    return sorted(
        doc_id
        for doc_id, stored in manifest.items()
        if stored.root in roots and doc_id not in seen and stored.source not in unread
    )


class Planner:
    """Decides each document's change as documents stream past, then what was removed.

    A document id met twice in one run is reported through ``on_skip`` the second time.
    """

    def __init__(
        self,
        manifest: dict[str, StoredDoc],
        on_skip: Callable[[str, str], None] = lambda where, why: None,
    ) -> None:
        self.manifest = manifest
        self.on_skip = on_skip
        self.seen: set[str] = set()  # ids only: memory per document stays small
        self.ids: dict[Change, list[str]] = {c: [] for c in Change}

    def visit(self, doc: Document) -> tuple[str, Change] | None:
        if doc.doc_id in self.seen:
            self.on_skip(doc.source, f"duplicate id {doc.doc_id!r}: ids must be unique")
            return None
        self.seen.add(doc.doc_id)
        sha = content_sha(doc)
        return sha, classify(doc, sha, self.manifest)

    def gone(self, roots: Collection[str], unread: Collection[str]) -> list[str]:
        return removed(self.manifest, self.seen, roots, unread)
