"""`twinsearch serve`: the HTTP API through FastAPI's test client, over a real store."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from twinsearch.cli.api import create_app
from twinsearch.cli.app import app as cli_app
from twinsearch.settings import Settings

from .conftest import EXAMPLES

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for args in (["-c", "default"], ["-c", "other"]):
        result = runner.invoke(
            cli_app, ["index", str(EXAMPLES / "corpus"), "--model", "hashing", *args,
                      "--data-dir", str(data)],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    return data


def _client(data: Path, api_key: str | None = None) -> TestClient:
    return TestClient(create_app(Settings(data_dir=data), api_key=api_key))


def _cli_hits(data: Path, *args: str) -> list[dict[str, object]]:
    result = runner.invoke(cli_app, ["search", *args, "--json", "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_get_and_post_give_the_cli_hits(data: Path) -> None:
    # The embedded store opens in one process at a time: ask the CLI first.
    expected = _cli_hits(data, "photosynthesis sunlight", "-k", "3")
    expected_hybrid = _cli_hits(data, "tides", "-k", "2", "--mode", "hybrid")
    expected_md = _cli_hits(data, "tides", "--where", "ext=.md")
    with _client(data) as api:
        got = api.get("/search", params={"q": "photosynthesis sunlight", "k": 3})
        assert got.status_code == 200
        assert got.json() == expected
        posted = api.post("/search", json={"q": "photosynthesis sunlight", "k": 3})
        assert posted.json() == expected
        hybrid = api.post("/search", json={"q": "tides", "k": 2, "mode": "hybrid"})
        assert hybrid.json() == expected_hybrid
        filtered = api.get("/search", params={"q": "tides", "where": "ext=.md"})
        assert filtered.json() == expected_md
        assert {h["source"].rsplit(".", 1)[1] for h in filtered.json()} == {"md"}
        other = api.get("/search", params={"q": "tides", "collection": "other"})
        assert other.status_code == 200 and other.json()


def test_bad_requests_get_a_4xx_with_a_json_error(data: Path) -> None:
    with _client(data) as api:
        for params in (
            {"q": "tides", "k": "ten"},
            {"q": "tides", "k": 0},
            {"q": "tides", "k": 1001},
            {"q": ""},
            {},
            {"q": "tides", "mode": "fuzzy"},
        ):
            response = api.get("/search", params=params)
            assert response.status_code == 422, params
            assert "detail" in response.json()
        assert api.post("/search", json={"q": "tides", "k": "x"}).status_code == 422
        assert api.post("/search", content=b"not json").status_code == 422
        missing = api.get("/search", params={"q": "tides", "collection": "nope"})
        assert missing.status_code == 404
        assert "no collection 'nope'" in missing.json()["error"]
        bad_name = api.get("/search", params={"q": "tides", "collection": "../x"})
        assert bad_name.status_code == 400 and "bad collection name" in bad_name.json()["error"]
        bad_where = api.get("/search", params={"q": "tides", "where": "nonsense"})
        assert bad_where.status_code == 400 and "error" in bad_where.json()
        blank = api.get("/search", params={"q": "   "})
        assert blank.status_code == 400 and "empty" in blank.json()["error"]


def test_collections_health_and_schema(data: Path) -> None:
    with _client(data) as api:
        collections = api.get("/collections").json()
        names = {c["name"]: c for c in collections["collections"]}
        assert set(names) == {"default", "other"}
        assert names["default"]["documents"] == 27 and names["default"]["model"] == "hashing:256"
        assert api.get("/health").json()["status"] == "ok"
        schema = api.get("/openapi.json").json()
        assert {"/search", "/collections", "/health"} <= set(schema["paths"])
        assert {"get", "post"} <= set(schema["paths"]["/search"])


def test_api_key_is_required_when_set(data: Path) -> None:
    with _client(data, api_key="s3cret") as api:
        assert api.get("/search", params={"q": "tides"}).status_code == 401
        assert api.get("/collections").status_code == 401
        wrong = api.get("/search", params={"q": "tides"}, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        ok = api.get("/search", params={"q": "tides"}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        bearer = api.get("/collections", headers={"Authorization": "Bearer s3cret"})
        assert bearer.status_code == 200
        assert api.get("/health").status_code == 200  # for load balancers


def test_concurrent_requests_all_answer_alike(data: Path) -> None:
    queries = ["tides", "photosynthesis", "vaccines", "tcp handshake"] * 8
    with _client(data) as api:
        alone = {q: api.get("/search", params={"q": q}).json() for q in set(queries)}
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda q: api.get("/search", params={"q": q}), queries))
    assert all(r.status_code == 200 for r in responses)
    assert [r.json() for r in responses] == [alone[q] for q in queries]


def test_a_switched_alias_is_followed_without_a_restart(data: Path) -> None:
    from twinsearch.stores import connect

    args = ["index", str(EXAMPLES / "encyclopedia.jsonl"), "--model", "hashing", "-c", "wiki"]
    assert runner.invoke(cli_app, [*args, "--data-dir", str(data)]).exit_code == 0
    aliases = connect(data_dir=data)
    aliases.switch_alias("main", "default")
    with _client(data) as api:
        first = api.get("/search", params={"q": "solar", "collection": "main"}).json()
        aliases.switch_alias("main", "wiki")
        second = api.get("/search", params={"q": "solar", "collection": "main"}).json()
    assert first and second
    assert not any(h["source"].endswith(".jsonl") for h in first)
    assert all(h["source"].endswith("encyclopedia.jsonl") for h in second)
