"""Payload indexes on user fields (`twinsearch optimize --field`): the kind each field's
values call for, and filters that answer the same with the index as without."""

from __future__ import annotations

import numpy as np
import pytest

from twinsearch.errors import ConfigError
from twinsearch.filters import field_kind, index_fields, parse_where
from twinsearch.nouns import Point
from twinsearch.stores import Client, CollectionSpec


def _fill(client: Client, name: str) -> object:
    store = client.collection(name)
    store.create(CollectionSpec(dim=4, metadata={"encoder": {"name": "x"}}))
    rng = np.random.default_rng(0)
    points = []
    for i in range(300):
        fields = {
            "year": 1950 + i % 60,
            "score": 0.5 + i % 7,
            "team": ["red", "blue", "green"][i % 3],
            "tags": ["a", "b"] if i % 2 else ["c"],
            "published": f"2024-{1 + i % 12:02d}-15",
            "draft": i % 5 == 0,
            "mixed": i if i % 2 else str(i),
        }
        vector = rng.normal(size=4).astype(np.float32)
        points.append(Point(f"00000000-0000-0000-0000-{i:012d}", vector, {"fields": fields}))
    store.upsert(points)
    store.finish()
    return store


def test_each_field_gets_the_index_its_values_call_for(client: Client, name: str) -> None:
    store = _fill(client, name)
    kinds = {
        "year": "integer",
        "score": "float",
        "team": "keyword",
        "tags": "keyword",
        "published": "datetime",
        "draft": "bool",
    }
    assert {f: field_kind(store, f) for f in kinds} == kinds
    with pytest.raises(ConfigError, match="several kinds"):
        field_kind(store, "mixed")
    with pytest.raises(ConfigError, match="no document has a field 'colour'"):
        field_kind(store, "colour")
    wheres = [
        ["year=1960"],
        ["year>=2000"],
        ["year=1950,1951"],
        ["score<3"],
        ["team=red"],
        ["tags=a"],
    ]
    dates = parse_where(["published>=2024-06-01", "published<2024-09-01"])
    counts = [store.count(parse_where(w)) for w in wheres]
    assert all(counts)
    assert store.count(dates) == 75

    assert index_fields(store, list(kinds)) == kinds

    assert [store.count(parse_where(w)) for w in wheres] == counts
    assert store.count(dates) == 75  # June, July and August: 25 points each
    assert store.metadata()["indexed_fields"] == kinds
    client.drop(name)
