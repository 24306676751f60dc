"""`twinsearch migrate`: the embedded store's collection copied to a server and checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.encoders import HashingEncoder
from twinsearch.errors import EncoderMismatch
from twinsearch.migrate import _same_top, migrate
from twinsearch.nouns import ScoredPoint
from twinsearch.search import Searcher
from twinsearch.stores import CollectionSpec, connect

from .conftest import EXAMPLES, SERVER_URL

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    args = ["index", str(EXAMPLES), "--model", "hashing", "--data-dir", str(data)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return data


@pytest.mark.parametrize("url", [":memory:"] + ([SERVER_URL] if SERVER_URL else []))
def test_a_migrated_collection_answers_like_the_original(data: Path, url: str, name: str) -> None:
    source_client, target_client = connect(data_dir=data), connect(url=url)
    try:
        source = source_client.collection("default")
        report = migrate(source, target_client, name, sample=8)
        assert report.verified and report.queries == 8
        assert report.copied == report.target_points == source.count() > 0
        target = target_client.collection(name)
        assert target.metadata() == source.metadata()
        # On a server the copy sits behind an alias, so a later re-index can switch it.
        assert target_client.aliases() == {name: target.name} != {name: name}

        # The whole search path (BM25 terms and payloads too) gives the same results.
        encoder = HashingEncoder()
        here, there = Searcher.for_store(source, encoder), Searcher.for_store(target, encoder)
        # Queries with no tied scores: engines order equal scores as they like.
        queries = [
            "the moon and the sea: tides of water",
            "plants use sunlight to make sugar in their leaves",
        ]
        for query in queries:
            for mode in ("dense", "bm25", "hybrid"):
                a, b = here.search(query, 3, mode), there.search(query, 3, mode)  # type: ignore[arg-type]
                assert [(h.doc_id, h.chunk, h.snippet) for h in a] == [
                    (h.doc_id, h.chunk, h.snippet) for h in b
                ]
                assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)

        again = migrate(source, target_client, name, sample=8)  # a re-run changes nothing
        assert again.verified and again.target_points == report.target_points
    finally:
        if SERVER_URL and url == SERVER_URL:
            target_client.drop(name)
        source_client.close()
        target_client.close()


def test_top_lists_compare_with_a_tolerance_and_ties_at_the_cut() -> None:
    def top(*pairs: tuple[str, float]) -> list[ScoredPoint]:
        return [ScoredPoint(id=i, score=s, payload={}) for i, s in pairs]

    want = top(("a", 0.9), ("b", 0.80000049), ("c", 0.5), ("d", 0.5))
    # Sums in another order: the last digits move, across a rounding boundary too.
    assert _same_top(want, top(("a", 0.90000002), ("b", 0.79999951), ("c", 0.5), ("d", 0.5)))
    # A tie at the cut is broken by either engine as it likes.
    assert _same_top(want, top(("a", 0.9), ("b", 0.8), ("c", 0.5), ("e", 0.5)))
    # Another id above the cut, or another score, is a difference.
    assert not _same_top(want, top(("a", 0.9), ("x", 0.8), ("c", 0.5), ("d", 0.5)))
    assert not _same_top(want, top(("a", 0.9), ("b", 0.7), ("c", 0.5), ("d", 0.5)))
    assert not _same_top(want, top(("a", 0.9), ("b", 0.8), ("c", 0.5)))


def test_a_collection_of_another_model_is_not_overwritten(data: Path) -> None:
    source_client, target_client = connect(data_dir=data), connect(url=":memory:")
    target = target_client.collection("default")
    target.create(CollectionSpec(dim=256, metadata={"encoder": {"fingerprint": "other"}}))
    with pytest.raises(EncoderMismatch, match="--as NAME"):
        migrate(source_client.collection("default"), target_client, "default")
    assert target.count() == 0
    source_client.close()


def test_migrate_command(data: Path) -> None:
    result = runner.invoke(app, ["migrate", "--to", ":memory:", "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    assert "server holds 77 of 77" in result.stderr
    assert "identical for 20 of 20 sample queries" in result.stderr
    assert "" not in result.stderr.splitlines()  # no progress bar left behind off a terminal
    missing = runner.invoke(
        app, ["migrate", "--to", ":memory:", "-c", "nope", "--data-dir", str(data)]
    )
    assert missing.exit_code == 1 and "no collection 'nope'" in missing.stderr
