"""The BEIR layout: ``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]`` and ``qrels/SPLIT.tsv``.

Evaluation (``twinsearch.evaluate``) and training (``twinsearch.training.data``) both read
datasets in this layout; each decides what a missing or odd part means for it.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from twinsearch.errors import SourceError


@dataclass(frozen=True)
class Files:
    """Where a dataset's parts are; ``None`` (or a qrels path that is no file) if absent."""

    corpus: Path | None
    queries: Path | None
    qrels: Path

    def missing(self) -> list[str]:
        """The parts absent, named as the layout names them."""
        found = [
            ("corpus.jsonl[.gz]", self.corpus is not None),
            ("queries.jsonl[.gz]", self.queries is not None),
            (f"qrels/{self.qrels.name}", self.qrels.is_file()),
        ]
        return [name for name, present in found if not present]


def files(folder: Path, split: str) -> Files:
    """The parts of the dataset in ``folder`` judged by ``split``."""
    qrels = folder / "qrels" / f"{split}.tsv"
    return Files(find_jsonl(folder, "corpus"), find_jsonl(folder, "queries"), qrels)


def find_jsonl(folder: Path, stem: str) -> Path | None:
    """``STEM.jsonl`` in ``folder``, else ``STEM.jsonl.gz``, else ``None``."""
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def open_text(path: Path) -> IO[str]:
    """A UTF-8 text file, gunzipped on the way if its name ends in ``.gz``."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSONL file, gzipped or not."""
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                raise SourceError(
                    f"{path}:{number}: not JSON ({exc}); fix or remove that line"
                ) from None


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a corpus or queries file; each record must have an ``_id``."""
    for number, record in json_lines(path):
        if not isinstance(record, dict) or "_id" not in record:
            raise SourceError(f'{path}:{number}: no "_id" field; each line needs "_id" and "text"')
        yield number, record


def read_queries(path: Path) -> dict[str, str]:
    """Query id -> text (empty where a query has none), as the queries file holds them."""
    return {str(r["_id"]): str(r.get("text") or "") for _, r in records(path)}


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id corpus-id score`` per line, tab-separated, with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if not row or (number == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # blank line, or the header
            if len(row) != 3 or not row[2].strip().lstrip("-").isdigit():
                raise SourceError(
                    f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score' with a whole "
                    f"number score, got {row!r}"
                )
            qrels.setdefault(row[0].strip(), {})[row[1].strip()] = int(row[2])
    return qrels
