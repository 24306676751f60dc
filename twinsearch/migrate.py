"""Copy a collection to another store (the embedded one to a Qdrant server), and check it.

The embedded engine cannot make snapshots a server could restore, so points travel through
the API: every point with its vectors and payload, in the server store's parallel,
retried batches. Point ids are kept, so a migration that stops half-way is finished by
running it again. The copy is then checked: the same number of points, and the same
top-10 for a sample of queries (exact search on both sides, so the HNSW graphs of the two
engines cannot differ in what they miss).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from twinsearch.collection import create
from twinsearch.errors import EncoderMismatch, StoreError
from twinsearch.nouns import ScoredPoint
from twinsearch.stores import Client, CollectionSpec, Store

SAMPLE_QUERIES = 20
TOP = 10


@dataclass
class MigrationReport:
    name: str
    source_points: int
    target_points: int = 0
    copied: int = 0
    seconds: float = 0.0
    queries: int = 0
    identical: int = 0
    differing: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.source_points == self.target_points and self.identical == self.queries

    def check(self, where: str) -> None:
        """Raise ``StoreError`` naming the fix unless the copy at ``where`` is the original."""
        if self.target_points > self.source_points:
            raise StoreError(
                f"{self.name!r} on {where} holds {self.target_points - self.source_points} "
                "points the original does not (an earlier copy of other documents?); drop it "
                "there, or migrate under another name with --as NAME"
            )
        if not self.verified:
            raise StoreError(
                "the copy differs from the original; run the migration again "
                f"(first differing query: point {self.differing[:1]})"
            )


def _same_top(want: list[ScoredPoint], got: list[ScoredPoint], tol: float = 1e-4) -> bool:
    """Whether two engines' top-k agree: the same scores rank by rank (to ``tol``: engines
    sum in different orders), and the same ids with the same scores above the last rank's
    score, whose ties ``k`` cuts wherever an engine likes."""
    if len(want) != len(got):
        return False
    a, b = sorted(p.score for p in want), sorted(p.score for p in got)
    if any(abs(x - y) > tol for x, y in zip(a, b, strict=True)):
        return False
    if not want:
        return True
    floor = a[0] + tol
    above_a = {p.id: p.score for p in want if p.score > floor}
    above_b = {p.id: p.score for p in got if p.id in above_a or p.score > floor + tol}
    return above_a.keys() == above_b.keys() and all(
        abs(above_a[i] - above_b[i]) <= tol for i in above_a
    )


def migrate(
    source: Store,
    target_client: Client,
    name: str,
    *,
    sample: int = SAMPLE_QUERIES,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> MigrationReport:
    """Copy ``source`` into collection ``name`` of ``target_client`` and verify the copy."""
    started = time.perf_counter()
    meta = source.metadata()
    report = MigrationReport(name, source.count())
    target = target_client.collection(name)
    fingerprint = meta.get("encoder", {}).get("fingerprint")
    if target.exists():
        have = target.metadata().get("encoder", {}).get("fingerprint")
        if have != fingerprint:
            raise EncoderMismatch(
                f"{name!r} on {target_client.location} holds another model's vectors "
                f"(fingerprint {str(have)[:12]}); migrate under another name with --as NAME"
            )
    else:
        spec = CollectionSpec(dim=int(meta["encoder"]["dim"]), metadata=meta)
        target = create(target_client, name, str(fingerprint), spec)
    every = max(1, report.source_points // max(sample, 1))
    queries: list[tuple[str, list[float]]] = []
    seen = 0
    for page in source.points():
        target.upsert(page)
        for point in page:
            if seen % every == 0 and len(queries) < sample:
                queries.append((point.id, [float(x) for x in point.vector]))
            seen += 1
        report.copied += len(page)
        on_progress(report.copied, report.source_points)
    target.finish()
    report.target_points = target.count()
    for point_id, vector in queries:
        want = source.search(TOP, dense=vector, exact=True)
        got = target.search(TOP, dense=vector, exact=True)
        report.queries += 1
        if _same_top(want, got):
            report.identical += 1
        else:
            report.differing.append(point_id)
    report.seconds = time.perf_counter() - started
    return report
