"""The package as mypy checks it: .typecheck/twinsearch links to every part of twinsearch,
with twinsearch.cli and twinsearch.indexer in their installed places."""

from __future__ import annotations

from .conftest import ROOT


def test_the_typecheck_tree_links_every_part_of_the_package() -> None:
    tree = ROOT / ".typecheck" / "twinsearch"
    parts = {p.name for p in (ROOT / "twinsearch").iterdir() if p.name != "__pycache__"}
    linked = {p.name: p.resolve() for p in tree.iterdir()}
    assert set(linked) == parts | {"cli", "indexer"}
    for name in parts:
        assert linked[name] == (ROOT / "twinsearch" / name).resolve()
    assert linked["cli"] == (ROOT / "cli").resolve()
    assert linked["indexer"] == (ROOT / "indexer").resolve()
