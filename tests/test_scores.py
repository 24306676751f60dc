"""What a hit's score says, in each search mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe moon pulls the sea, making tides twice a day.")
    (docs / "moon.md").write_text("# Moon\n\nThe moon has craters.")
    (docs / "bees.md").write_text("# Bees\n\nBees dance in the hive.")
    result = runner.invoke(
        app, ["index", str(docs), "--model", "hashing", "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.stderr
    return tmp_path / "d"


def _search(data: Path, mode: str, *extra: str) -> str:
    args = ["search", "moon tides sea", "--mode", mode, "--data-dir", str(data), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _ranked(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if re.match(r"\s+\d+\. ", line)]


def test_each_mode_shows_a_score_a_person_can_read(data: Path) -> None:
    dense = _ranked(_search(data, "dense"))
    assert re.match(r"1\. 0\.\d{3}  ", dense[0])  # a cosine similarity
    bm25 = _ranked(_search(data, "bm25"))
    assert re.match(r"1\. 3/3 terms  \S*/tides\.md:1  ", bm25[0])  # moon, tides and sea
    assert re.match(r"2\. 1/3 terms  \S*/moon\.md:1  ", bm25[1])  # moon alone
    hybrid = _ranked(_search(data, "hybrid"))
    assert re.match(r"1\. 0\.\d{3} · 3/3 terms  \S*/tides\.md:1", hybrid[0])
    assert not any("0.03" in line.split("  ")[0] for line in hybrid)  # no fusion scores


def test_json_keeps_the_raw_score_beside_the_readable_ones(data: Path) -> None:
    dense, bm25, hybrid = (
        json.loads(_search(data, m, "--json")) for m in ("dense", "bm25", "hybrid")
    )
    assert dense[0]["similarity"] == pytest.approx(dense[0]["score"])
    assert dense[0]["terms_matched"] is None and dense[0]["mode"] == "dense"
    assert (bm25[0]["terms_matched"], bm25[0]["query_terms"]) == (3, 3)
    assert bm25[0]["similarity"] is None and bm25[0]["score"] > 1  # BM25's own scale
    top = hybrid[0]
    assert top["score"] < 0.05  # reciprocal rank fusion: 1/61 + 1/61 at best
    assert 0 < top["similarity"] <= 1 and top["terms_matched"] == 3
    # The cosine shown in hybrid mode is the dense mode's for the same passage.
    same = next(h for h in dense if h["doc_id"] == top["doc_id"])
    assert top["similarity"] == pytest.approx(same["similarity"], abs=1e-5)


def test_a_filter_that_explains_an_empty_result_is_named(data: Path) -> None:
    def search(*where: str) -> tuple[str, str]:
        args = ["search", "moon", "--data-dir", str(data)]
        for w in where:
            args += ["--where", w]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        return result.stdout, result.stderr

    out, said = search("nosuchfield=1")
    assert out.strip() == "no results"
    assert "warning: no document has a field 'nosuchfield'" in said
    out, said = search("ext=MD")
    assert out.strip() == "no results"
    assert "warning: no document has ext='.MD', but 3 have '.md'" in said
    out, said = search("ext=md", "doc_id=nothing.md")
    assert out.strip() == "no results" and said == ""  # a plain miss: nothing to explain
    out, said = search("doc_id=bees.md", "title=Moon")
    assert "each filter matches some documents, but no document matches all" in said
    assert "warning" not in search("ext=md")[1]
