"""`twinsearch serve`: the HTTP API through FastAPI's test client, over a real store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from twinsearch.api import create_app
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
        assert all(h["line"] >= 1 and h["end_line"] >= h["line"] for h in filtered.json())
        other = api.get("/search", params={"q": "tides", "collection": "other"})
        assert other.status_code == 200 and other.json()


def _error(response: httpx.Response, status: int) -> str:
    """The one line of an error body, which has that one key whatever the status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"], body
    return str(body["error"])


def test_bad_requests_get_a_4xx_with_one_json_error_line(data: Path) -> None:
    k_range = "k: must be a whole number from 1 to 1000"
    with _client(data) as api:
        for params, message in (
            ({"q": "tides", "k": "ten"}, f'{k_range}, got "ten"'),
            ({"q": "tides", "k": 0}, f'{k_range}, got "0"'),
            ({"q": "tides", "k": 1001}, f'{k_range}, got "1001"'),
            ({"q": ""}, "q: must not be empty"),
            ({"q": "   "}, "q: must not be empty"),
            ({}, "q: required"),
            ({"k": 0}, f'q: required; {k_range}, got "0"'),
            ({"q": "tides", "mode": "fuzzy"}, 'mode: must be dense, bm25 or hybrid, got "fuzzy"'),
        ):
            assert _error(api.get("/search", params=params), 422) == message, params
        for body, message in (
            ({"q": "tides", "k": "x"}, f'{k_range}, got "x"'),
            ({"q": "tides", "k": 3.5}, f"{k_range}, got 3.5"),
            ({"q": " "}, "q: must not be empty"),
            ({"q": "tides", "where": "ext=.md"}, 'where: must be a list such as ["ext=.md"]'),
            ({"q": "tides", "top_k": 3}, "top_k: unknown field; the fields are q, k,"),
            ([{"q": "tides"}], 'body: must be a JSON object such as {"q": "tides"}'),
        ):  # fmt: skip
            assert _error(api.post("/search", json=body), 422).startswith(message), body
        as_json = {"content-type": "application/json"}
        garbled = api.post("/search", content=b"not json", headers=as_json)
        assert _error(garbled, 422).startswith("body: not valid JSON")
        assert "application/json" in _error(api.post("/search", content=b'{"q": "x"}'), 422)
        assert _error(api.post("/search"), 422).startswith("body: required")
        missing = api.get("/search", params={"q": "tides", "collection": "nope"})
        assert "no collection 'nope'" in _error(missing, 404)
        bad_name = api.get("/search", params={"q": "tides", "collection": "../x"})
        assert "bad collection name" in _error(bad_name, 400)
        bad_where = _error(api.get("/search", params={"q": "tides", "where": "nonsense"}), 400)
        assert bad_where.startswith("cannot read where 'nonsense'")
        bad_date = api.post("/search", json={"q": "tides", "where": ["modified>=soon"]})
        assert "--" not in _error(bad_date, 400)
        assert "/openapi.json" in _error(api.get("/nowhere"), 404)
        assert "PUT" in _error(api.put("/search"), 405)
        for page in ("/docs", "/redoc"):  # they load scripts from a CDN: blank offline
            _error(api.get(page), 404)


def test_collections_health_and_schema(data: Path) -> None:
    with _client(data) as api:
        collections = api.get("/collections").json()
        names = {c["name"]: c for c in collections["collections"]}
        assert set(names) == {"default", "other"}
        assert names["default"]["documents"] == 27 and names["default"]["model"] == "hashing:256"
        assert api.get("/health").json() == {"status": "ok", "location": str(data / "collections")}
        schema = api.get("/openapi.json").json()
    assert {"/search", "/collections", "/health"} <= set(schema["paths"])
    assert {"get", "post"} <= set(schema["paths"]["/search"])
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error_models = {
        (path, method, status): response["content"]["application/json"]["schema"]
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }
    assert ("/search", "get", "422") in error_models and ("/search", "post", "401") in error_models
    assert set(map(str, error_models.values())) == {"{'$ref': '#/components/schemas/Error'}"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]


def test_api_key_is_required_when_set(data: Path) -> None:
    with _client(data, api_key="s3cret") as api:
        refused = _error(api.get("/search", params={"q": "tides"}), 401)
        assert "X-API-Key" in refused and "Bearer" in refused
        _error(api.get("/search", params={"k": 0}), 401)  # nothing said about the request
        _error(api.get("/collections"), 401)
        wrong = api.get("/search", params={"q": "tides"}, headers={"X-API-Key": "nope"})
        _error(wrong, 401)
        ok = api.get("/search", params={"q": "tides"}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        for scheme in ("Bearer", "bearer"):
            bearer = api.get("/collections", headers={"Authorization": f"{scheme} s3cret"})
            assert bearer.status_code == 200
        _error(api.get("/collections", headers={"Authorization": "s3cret"}), 401)
        # /health stays open for load balancers, but says where the data lives only to callers
        # with the key.
        assert api.get("/health").json() == {"status": "ok"}
        keyed = api.get("/health", headers={"X-API-Key": "s3cret"}).json()
        assert keyed == {"status": "ok", "location": str(data / "collections")}


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


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            cli_app, ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")]
        )
    assert result.exit_code == 1
    assert result.stderr == f"error: port {port} on 127.0.0.1 is in use; pick another with --port\n"


def _free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return int(free.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_once_it_says_so(data: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "twinsearch.cli", "serve", "--port", str(port), "--data-dir", data],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TWINSEARCH_API_KEY": ""},
    )
    try:
        said = server.stderr.readline() if server.stderr else ""
        url = f"http://127.0.0.1:{port}"
        assert said.startswith(f"serving {data} on {url} ") and "/openapi.json" in said
        assert "/docs" not in said
        deadline = time.monotonic() + 60
        while True:  # the socket listens already; the app starts a moment later
            try:
                health = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert health.json() == {"status": "ok", "location": str(data / "collections")}
        assert httpx.get(f"{url}/search", params={"q": "tides", "k": 1}).json()[0]["rank"] == 1
    finally:
        server.send_signal(signal.SIGINT)
        _, rest = server.communicate(timeout=30)
    assert server.returncode == 0 and rest.strip() == "stopped"


def test_serve_that_cannot_open_the_store_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twinsearch import api
    from twinsearch.errors import StoreError

    def unreachable(self: api.Searchers, settings: Settings) -> None:
        raise StoreError("cannot reach Qdrant at http://nowhere:6333")

    monkeypatch.setattr(api.Searchers, "__init__", unreachable)
    result = runner.invoke(
        cli_app, ["serve", "--port", str(_free_port()), "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 1
    assert result.stderr == "error: cannot reach Qdrant at http://nowhere:6333\n"


def test_serve_says_when_anyone_can_reach_it() -> None:
    from twinsearch.cli.serve import _reachable_from_outside

    assert not any(map(_reachable_from_outside, ["127.0.0.1", "127.0.1.1", "::1", "localhost"]))
    assert all(map(_reachable_from_outside, ["0.0.0.0", "::", "192.168.1.5", "myhost"]))
