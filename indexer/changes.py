"""What a run has to do: which documents are new, changed, unchanged, or gone.

Decided by content hashes, not timestamps: a file touched but not edited is unchanged. A
document counts as stored only when its last chunk carries the same hash as its first, so a
run killed half-way through a document leaves it to be indexed again, never half-indexed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from twinsearch.documents import content_sha
from twinsearch.nouns import Document
from twinsearch.stores import Store

MANIFEST_FIELDS = ("doc_id", "chunk", "n_chunks", "content_sha", "root", "source", "modified")

DocKey = tuple[str, str]
"""A document's identity in a collection: (root, doc_id). The same relative path under two
indexed folders (each one's README.md) is two documents."""


def key_of(doc: Document) -> DocKey:
    return (doc.root, doc.doc_id)


class Change(str, Enum):
    new = "new"
    changed = "changed"
    unchanged = "unchanged"
    removed = "removed"


@dataclass
class StoredDoc:
    sha: str = ""
    n_chunks: int = 0
    root: str = ""
    source: str = ""
    modified: str = ""
    last_sha: str | None = None
    """The hash on chunk ``n_chunks - 1``: equal to ``sha`` once the document is complete."""
    stale: bool = False
    """Points beyond ``n_chunks`` remain from an older, longer version."""

    @property
    def complete(self) -> bool:
        return bool(self.sha) and self.last_sha == self.sha


def load_manifest(store: Store) -> dict[DocKey, StoredDoc]:
    """One entry per stored document, from one pass over the collection's payloads."""
    docs: dict[DocKey, StoredDoc] = {}
    beyond: dict[DocKey, int] = {}
    last: dict[DocKey, dict[int, str]] = {}
    for _, payload in store.scroll(MANIFEST_FIELDS):
        key = (str(payload.get("root", "")), str(payload.get("doc_id")))
        chunk = int(payload.get("chunk", 0))
        entry = docs.setdefault(key, StoredDoc())
        last.setdefault(key, {})[chunk] = str(payload.get("content_sha", ""))
        beyond[key] = max(beyond.get(key, -1), chunk)
        if chunk == 0:
            entry.sha = str(payload.get("content_sha", ""))
            entry.n_chunks = int(payload.get("n_chunks", 0))
            entry.root = key[0]
            entry.source = str(payload.get("source", ""))
            entry.modified = str(payload.get("modified", ""))
    for key, entry in docs.items():
        entry.last_sha = last[key].get(entry.n_chunks - 1)
        entry.stale = beyond[key] >= entry.n_chunks
    return docs


def classify(doc: Document, sha: str, manifest: dict[DocKey, StoredDoc]) -> Change:
    stored = manifest.get(key_of(doc))
    if stored is None:
        return Change.new
    return Change.unchanged if stored.complete and stored.sha == sha else Change.changed


def removed(
    manifest: dict[DocKey, StoredDoc],
    seen: Collection[DocKey],
    roots: Collection[str],
    unread: Collection[str],
) -> list[DocKey]:
    """Stored documents from the roots indexed now that this run did not meet.

    A document whose file was skipped this time (unreadable, say) is kept: a failed read is
    not a deletion.
    """
    return sorted(
        key
        for key, stored in manifest.items()
        if stored.root in roots and key not in seen and stored.source not in unread
    )


class Planner:
    """Decides each document's change as documents stream past, then what was removed.

    A document id met twice in one run is reported through ``on_skip`` the second time.
    """

    def __init__(
        self,
        manifest: dict[DocKey, StoredDoc],
        on_skip: Callable[[str, str], None] = lambda where, why: None,
    ) -> None:
        self.manifest = manifest
        self.on_skip = on_skip
        self.seen: set[DocKey] = set()  # keys only: memory per document stays small
        self.by_change: dict[Change, list[DocKey]] = {c: [] for c in Change}

    def visit(self, doc: Document) -> tuple[str, Change] | None:
        key = key_of(doc)
        if key in self.seen:
            self.on_skip(doc.source, f"duplicate id {doc.doc_id!r}: ids must be unique")
            return None
        self.seen.add(key)
        sha = content_sha(doc)
        return sha, classify(doc, sha, self.manifest)

    def gone(self, roots: Collection[str], unread: Collection[str]) -> list[DocKey]:
        return removed(self.manifest, self.seen, roots, unread)
