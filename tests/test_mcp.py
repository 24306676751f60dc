"""`twinsearch mcp` through the MCP SDK's own client, against a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app

runner = CliRunner()


def cli(*args: str | Path) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


async def _session(
    data: Path, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[str], list[Any]]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "twinsearch.cli", "mcp", "--data-dir", str(data)],
        env={k: v for k, v in os.environ.items() if not k.startswith("TWINSEARCH_")},
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = sorted(tool.name for tool in (await session.list_tools()).tools)
        results = [await session.call_tool(name, args) for name, args in calls]
    return tools, results


def _json(result: Any) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


@pytest.mark.slow
def test_the_tools_answer_as_the_command_line_does(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe moon pulls the sea twice a day.")
    (docs / "bees.md").write_text("# Bees\n\nBees dance to tell the hive about flowers.")
    cli("index", docs, "--model", "hashing", "--data-dir", data)
    tools, (found, hybrid, listed, bad, got) = asyncio.run(
        _session(
            data,
            [
                ("search", {"query": "moon sea", "k": 2}),
                ("search", {"query": "bees hive", "mode": "hybrid", "where": ["ext=.md"]}),
                ("collections", {}),
                ("search", {"query": "moon", "mode": "fuzzy"}),
                ("get", {"id": "tides.md", "line": 3, "lines": 1}),
            ],
        )
    )
    assert tools == ["collections", "get", "search"]
    expected = json.loads(cli("search", "moon sea", "-k", "2", "--json", "--data-dir", data))
    assert _json(found) == expected
    assert _json(hybrid)[0]["doc_id"] == "bees.md"
    assert [c["name"] for c in _json(listed)["collections"]] == ["default"]
    assert bad.is_error and "unknown search mode 'fuzzy'" in bad.content[0].text
    expected_get = json.loads(cli("get", "tides.md:3", "-l", "1", "--json", "--data-dir", data))
    assert _json(got) == expected_get and expected_get["lines"] == [
        "The moon pulls the sea twice a day."
    ]
