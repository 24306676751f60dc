"""Training data: what a user has, read into (query, positive, negatives) or labelled pairs.

Accepted: JSONL/JSON/CSV/TSV with ``query``/``positive``(/``negative``...) fields, with
``anchor``/``positive``/``negative`` triplets, or with ``text1``/``text2``/``label`` pairs;
and a BEIR folder, whose queries are joined to their relevant documents. Field names can be
changed per role. A record that cannot be understood is an error naming its line; an empty
text is skipped and counted.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from twinsearch import beir
from twinsearch.errors import SourceError

Kind = Literal["pairs", "labelled"]

ROLES = ("query", "positive", "negative", "text1", "text2", "label")
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "query": ("query", "anchor"),
    "positive": ("positive",),
    "negative": ("negative", "negatives"),
    "text1": ("text1",),
    "text2": ("text2",),
    "label": ("label",),
}
VAL_FRACTION = 0.1
MIN_FOR_HOLDOUT = 20
"""Below this many distinct queries there is nothing to spare for a held-out split."""


@dataclass(frozen=True)
class Pair:
    """A query, a document relevant to it, and documents that are not (may be empty)."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Labelled:
    text1: str
    text2: str
    label: int


@dataclass
class TrainingData:
    kind: Kind
    source: Path
    pairs: list[Pair] = field(default_factory=list)
    labelled: list[Labelled] = field(default_factory=list)
    corpus: list[str] = field(default_factory=list)
    """Documents to mine negatives from and to search in held-out evaluation."""
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs) if self.kind == "pairs" else len(self.labelled)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def with_examples(self, examples: Sequence[Pair] | Sequence[Labelled]) -> TrainingData:
        if self.kind == "pairs":
            return replace(self, pairs=list(examples), labelled=[])  # type: ignore[arg-type]
        return replace(self, labelled=list(examples), pairs=[])  # type: ignore[arg-type]


def parse_fields(specs: Sequence[str]) -> dict[str, str]:
    """``ROLE=NAME`` options, e.g. ``query=question``, into a role -> field name map."""
    fields = {}
    for spec in specs:
        role, sep, name = spec.partition("=")
        role, name = role.strip(), name.strip()
        if not sep or not name or role not in ROLES:
            raise SourceError(
                f"bad --field {spec!r}: write ROLE=NAME with ROLE one of {', '.join(ROLES)}, "
                "e.g. --field query=question"
            )
        fields[role] = name
    return fields


def read(
    path: Path, *, fields: Mapping[str, str] | None = None, split: str = "train"
) -> TrainingData:
    """Read training data from a file or a BEIR folder; ``SourceError`` on what cannot be used."""
    path = Path(path)
    if path.is_dir():
        return _read_beir(path, split)
    if not path.is_file():
        raise SourceError(f"{path} does not exist; pass a JSONL/CSV/TSV file or a BEIR folder")
    records = _records(path)
    data = _from_records(path, records, dict(fields or {}))
    if not len(data):
        raise SourceError(f"{path} has no usable training example")
    return data


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from _csv_records(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{path}: not JSON ({exc}); fix it or write JSONL") from None
        if not isinstance(records, list):
            raise SourceError(f"{path}: expected a JSON list of records")
        for number, record in enumerate(records, start=1):
            yield number, _object(path, number, record)
    elif suffix in (".jsonl", ".ndjson") or path.name.endswith(".jsonl.gz"):
        for number, record in beir.json_lines(path):
            yield number, _object(path, number, record)
    else:
        raise SourceError(
            f"{path}: unknown training data format {suffix or '(none)'}; "
            "use .jsonl[.gz], .json, .csv or .tsv, or a BEIR folder"
        )


def _object(path: Path, number: int, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise SourceError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
    return record


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if k is not None}


def _pick(fields: Mapping[str, str], role: str, keys: Sequence[str]) -> str | None:
    if role in fields:
        return fields[role] if fields[role] in keys else None
    return next((name for name in DEFAULT_FIELDS[role] if name in keys), None)


def _from_records(
    path: Path, records: Iterator[tuple[int, dict[str, Any]]], fields: dict[str, str]
) -> TrainingData:
    first = next(records, None)
    if first is None:
        raise SourceError(f"{path} is empty")
    number, record = first
    keys = list(record)
    text1, text2, label = (_pick(fields, r, keys) for r in ("text1", "text2", "label"))
    query, positive = _pick(fields, "query", keys), _pick(fields, "positive", keys)
    if text1 and text2 and label:
        data = TrainingData("labelled", path)
        reader = _labelled(path, text1, text2, label, data)
    elif query and positive:
        data = TrainingData("pairs", path)
        reader = _pairs(path, query, positive, fields, data)
    else:
        raise SourceError(
            f"{path}:{number}: cannot tell what the fields {keys} hold; expected query and "
            "positive (optionally negative), anchor/positive/negative, or text1, text2 and "
            "label; name yours with --field, e.g. --field query=question"
        )
    reader(number, record)
    for number, record in records:
        reader(number, record)
    seen: set[str] = set()
    for text in _documents(data):
        if text not in seen:
            seen.add(text)
            data.corpus.append(text)
    return data


def _negative_fields(fields: Mapping[str, str], keys: Sequence[str]) -> list[str]:
    named = _pick(fields, "negative", keys)
    numbered = sorted(
        (k for k in keys if k.startswith("negative_") and k[9:].isdigit()),
        key=lambda k: int(k[9:]),
    )
    return ([named] if named else []) + [k for k in numbered if k != named]


def _text(path: Path, number: int, record: Mapping[str, Any], name: str) -> str:
    if name not in record:
        raise SourceError(f'{path}:{number}: no "{name}" field; every record needs it')
    value = record[name]
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise SourceError(f'{path}:{number}: "{name}" must be text, got {type(value).__name__}')
    return str(value).strip()


def _pairs(
    path: Path, query: str, positive: str, fields: Mapping[str, str], data: TrainingData
) -> Any:
    def add(number: int, record: Mapping[str, Any]) -> None:
        q, p = _text(path, number, record, query), _text(path, number, record, positive)
        if not q or not p:
            data.skip("empty query or positive")
            return
        found: list[str] = []
        for name in _negative_fields(fields, list(record)):
            value = record.get(name)
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item is not None and not isinstance(item, str):
                    raise SourceError(
                        f'{path}:{number}: "{name}" must be text or a list of texts, '
                        f"got {type(item).__name__}"
                    )
                if item and item.strip():
                    found.append(item.strip())
        data.pairs.append(Pair(q, p, tuple(found)))

    return add


def _labelled(path: Path, text1: str, text2: str, label: str, data: TrainingData) -> Any:
    def add(number: int, record: Mapping[str, Any]) -> None:
        a, b = _text(path, number, record, text1), _text(path, number, record, text2)
        raw = record.get(label)
        value = str(raw).strip().lower() if raw is not None else ""
        if value in ("1", "1.0", "true"):
            y = 1
        elif value in ("0", "0.0", "false"):
            y = 0
        else:
            raise SourceError(
                f'{path}:{number}: "{label}" is {raw!r}; labels must be 0 (different) or 1 (same)'
            )
        if not a or not b:
            data.skip("empty text")
            return
        data.labelled.append(Labelled(a, b, y))

    return add


def _documents(data: TrainingData) -> Iterator[str]:
    for pair in data.pairs:
        yield pair.positive
        yield from pair.negatives
    for example in data.labelled:
        yield example.text2


def _read_beir(folder: Path, split: str) -> TrainingData:
    parts = beir.files(folder, split)
    corpus_path, queries_path, qrels_path = parts.corpus, parts.queries, parts.qrels
    if corpus_path is None or queries_path is None or not qrels_path.is_file():
        raise SourceError(
            f"{folder} is not a BEIR dataset with a {split!r} split: it needs "
            f"corpus.jsonl[.gz], queries.jsonl[.gz] and qrels/{split}.tsv"
        )
    documents = {}
    for _, record in beir.records(corpus_path):
        title = str(record.get("title") or "").strip()
        text = str(record.get("text") or "").strip()
        # The same title-headed text the indexer embeds for a document's first chunk.
        documents[str(record["_id"])] = f"{title}\n{text}" if title and text else title or text
    queries = {qid: text.strip() for qid, text in beir.read_queries(queries_path).items()}
    data = TrainingData("pairs", folder)
    for qid, judged in beir.read_qrels(qrels_path).items():
        # Graded judgments: a query's most relevant documents first, for ``limited``.
        for doc_id, relevance in sorted(judged.items(), key=lambda item: (-item[1], item[0])):
            if relevance <= 0:
                continue
            if qid not in queries:
                data.skip("query not in queries file")
            elif doc_id not in documents:
                data.skip("document not in corpus")
            elif not queries[qid] or not documents[doc_id]:
                data.skip("empty query or document")
            else:
                data.pairs.append(Pair(queries[qid], documents[doc_id]))
    if not data.pairs:
        raise SourceError(f"{qrels_path}: no judged pair has both a query and a document")
    data.corpus = [text for text in documents.values() if text]
    return data


def limited(data: TrainingData, most: int, seed: int = 12) -> TrainingData:
    """At most ``most`` examples of ``data`` (0: all), taken one query at a time: each
    query's first example (a BEIR query's most relevant document), then each one's second,
    and so on, the queries in an order shuffled by ``seed``. Many queries with one example
    each teach more than a few queries with many, in the same training time."""
    if most <= 0 or len(data) <= most:
        return data
    groups = _by_query(data)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    kept: list[Pair | Labelled] = []
    depth = 0
    while len(kept) < most:
        kept += [groups[k][depth] for k in keys if depth < len(groups[k])][: most - len(kept)]
        depth += 1
    return data.with_examples(kept)  # type: ignore[arg-type]


def _by_query(data: TrainingData) -> dict[str, list[Pair | Labelled]]:
    """The examples grouped by query (a labelled pair's first text), in their order."""
    examples: Sequence[Pair | Labelled] = data.pairs if data.kind == "pairs" else data.labelled
    groups: dict[str, list[Pair | Labelled]] = {}
    for example in examples:
        key = example.query if isinstance(example, Pair) else example.text1
        groups.setdefault(key, []).append(example)
    return groups


def holdout(
    data: TrainingData, fraction: float = VAL_FRACTION, seed: int = 12
) -> tuple[TrainingData, TrainingData | None]:
    """Split off ``fraction`` of the queries (all of a query's examples go to one side)."""
    groups = _by_query(data)
    if fraction <= 0 or len(groups) < MIN_FOR_HOLDOUT:
        return data, None
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    cut = max(1, round(len(keys) * fraction))
    held = [e for k in keys[:cut] for e in groups[k]]
    kept = [e for k in keys[cut:] for e in groups[k]]
    return data.with_examples(kept), data.with_examples(held)  # type: ignore[arg-type]
