"""What the commands print around their work: help, tables, hints, answers to prompts; and
what they leave behind on the machine. Fast: the hashing encoder and model-free graphs."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.cli.train import index_hint, results_table
from twinsearch.training.trainer import TrainResult

from .conftest import EXAMPLES

runner = CliRunner()
COMMANDS = [
    "index", "search", "info", "eval", "shell", "train", "compare", "drop", "alias", "serve",
    "migrate", "optimize",
]  # fmt: skip


def run(*args: str | Path, code: int = 0, input: str | None = None):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def help_text(command: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``command --help`` with the box drawing gone and the wrapping undone."""
    monkeypatch.setenv("COLUMNS", "200")
    text = run(command, "--help").stdout
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    run("index", EXAMPLES / "corpus", "--model", "hashing", "--data-dir", data_dir)
    return data_dir


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_the_texts_as_written(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = help_text(command, monkeypatch)
    assert "%%" not in text  # click does not %-format help as argparse does
    if command in ("index", "info", "drop", "migrate", "optimize"):
        # Bracketed notes are text, not markup to be swallowed.
        assert "[env: TWINSEARCH_DATA_DIR; default: per-user data folder]" in text


def test_help_notes_in_brackets_survive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "losses [default: 0.5]" in help_text("train", monkeypatch)
    assert "within 5% of the positive" in help_text("train", monkeypatch)
    assert "[default: the same]" in help_text("migrate", monkeypatch)


@pytest.mark.parametrize("command", COMMANDS)
def test_argument_placeholders_are_upper_case(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    usage = re.search(r"Usage: twinsearch \S+ \[OPTIONS\](.*)", run(command, "--help").stdout)
    assert usage is not None
    for placeholder in re.findall(r"[\[{]([^\]}]+)[\]}]", usage.group(1)):
        assert placeholder == placeholder.upper(), usage.group(0)


def _result(held_out: int, before: float, after: float) -> TrainResult:
    metrics = ["val_cosine_ndcg@10", "val_cosine_recall@100"]
    return TrainResult(
        output=Path("m"), metric=metrics[0], before={k: before for k in metrics},
        after={k: after for k in metrics}, train_examples=9, held_out_examples=held_out,
        steps=1, best_step=None, seconds=1.0, examples_per_second=9.0, device="cpu",
        precision="fp32",
    )  # fmt: skip


@pytest.mark.parametrize(
    "held_out,before,after", [(7, 0.5, 0.75), (123456, 0.12345, 1.0), (3, float("nan"), 0.1)]
)
def test_train_table_numbers_sit_under_their_headers(
    held_out: int, before: float, after: float
) -> None:
    header, *rows = results_table(_result(held_out, before, after))
    cells = re.compile(r"\S+(?: \S+)*")  # cells are two or more spaces apart

    def right_edges(line: str) -> list[int]:
        return [m.end() for m in cells.finditer(line)]

    assert [m.group() for m in cells.finditer(header)][1:] == ["base", "fine-tuned", "change"]
    assert [row.split()[0] for row in rows] == ["nDCG@10", "Recall@100"]
    for row in rows:
        assert right_edges(row)[1:] == right_edges(header)[1:], "\n".join([header, row])


def test_the_hint_after_training_says_reindex_only_for_an_existing_collection(
    data: Path, tmp_path: Path
) -> None:
    model = tmp_path / "my model"
    fresh = index_hint(model, tmp_path / "empty")
    assert fresh == f"index with it: twinsearch index PATH --model '{model}'"
    existing = index_hint(model, data)
    assert existing.startswith("'default' holds another model's vectors")
    assert existing.endswith(f"twinsearch index PATH --model '{model}' --reindex")


def test_drop_answered_no_keeps_the_collection(data: Path) -> None:
    kept = run("drop", "default", "--data-dir", data, input="n\n")
    assert kept.stderr.endswith("kept 'default'; nothing dropped\n")
    info = json.loads(run("info", "--json", "--data-dir", data).stdout)
    assert [c["name"] for c in info["collections"]] == ["default"]


def test_dropping_an_alias_names_the_collection_that_goes(data: Path) -> None:
    run("alias", "docs", "default", "--data-dir", data)
    asked = run("drop", "docs", "--data-dir", data, input="n\n")
    assert "delete collection 'default' (which 'docs' names) (77 chunks)?" in asked.stderr
    dropped = run("drop", "docs", "--yes", "--data-dir", data)
    assert dropped.stderr == "dropped 'default' (which 'docs' names) (77 chunks)\n"


def test_alias_lists_none_and_says_how_to_make_one(data: Path) -> None:
    none = run("alias", "--data-dir", data)
    assert none.stdout == ""  # the listing stays empty for scripts
    assert "no aliases yet; `twinsearch alias NAME TARGET`" in none.stderr
    made = run("alias", "docs", "default", "--data-dir", data)
    assert made.stderr == "'docs' now searches 'default'\n"
    assert run("alias", "--data-dir", data).stdout == "docs\tdefault\n"


def _onnx_export(folder: Path) -> None:
    """A model-free export for ``OnnxEncoder``: a word-level tokenizer and an embedding
    lookup standing in for the transformer."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    folder.mkdir()
    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "tide": 1, "moon": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = numpy_helper.from_array(np.eye(3, 4, dtype=np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["hidden"])],
        "lookup",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", 4])],
        [table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "query.onnx"))
    config = {
        "name": "lookup", "fingerprint": "lookup", "dim": 4, "similarity": "cosine",
        "window": 8, "max_seq_length": 8, "prompts": {}, "inputs": ["input_ids"],
        "heads": False, "pooling": "mean", "normalize": True,
    }  # fmt: skip
    (folder / "onnx.json").write_text(json.dumps(config))


def test_onnx_sessions_leave_no_telemetry_files(tmp_path: Path) -> None:
    _onnx_export(tmp_path / "export")
    code = (
        "import json, sys; from pathlib import Path\n"
        "from twinsearch.encoders.onnx import OnnxEncoder\n"
        "folder = Path(sys.argv[1])\n"
        "encoder = OnnxEncoder(folder, json.loads((folder / 'onnx.json').read_text()))\n"
        "print(encoder.encode_queries(['moon tide']).tolist())\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "export")],
        env={**env, "HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [pytest.approx([0.0, 0.7071, 0.7071, 0.0], abs=1e-4)]
    assert list(home.rglob("*")) == []  # onnxruntime's official builds write ~/.cache/Microsoft


def test_optimize_merges_a_collections_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Segments of 1 MB: 1,000 chunks of a 256-dimensional model.
    monkeypatch.setenv("TWINSEARCH_SEGMENT_MB", "1")
    corpus = tmp_path / "notes.jsonl"
    words = [f"{a}{b}" for a in ("tea", "salt", "ink", "moss") for b in range(50)]
    rng = random.Random(0)
    lines = [{"id": f"n{i}", "text": " ".join(rng.choices(words, k=8))} for i in range(4500)]
    corpus.write_text("\n".join(json.dumps(line) for line in lines))
    data_dir = tmp_path / "data"
    run("index", corpus, "--model", "hashing", "--data-dir", data_dir)

    def found() -> list[list[tuple[float, str]]]:
        answers = []
        # (Not hybrid: this corpus's BM25 ties below the top 10 may fuse in another order.)
        for mode in ("dense", "bm25"):
            query = ["search", "salt7 ink12 moss3", "--mode", mode, "--json"]
            hits = json.loads(run(*query, "--data-dir", data_dir).stdout)
            answers.append(sorted((-round(h["score"], 5), h["doc_id"]) for h in hits))
        return answers

    hits = found()
    [before] = json.loads(run("info", "--json", "--data-dir", data_dir).stdout)["collections"]
    assert before["segments"] >= 4

    done = json.loads(run("optimize", "--json", "--data-dir", data_dir).stdout)

    [after] = json.loads(run("info", "--json", "--data-dir", data_dir).stdout)["collections"]
    assert done["segments_before"] == before["segments"]
    assert done["segments_after"] == after["segments"] <= 2
    assert after["chunks"] == before["chunks"] == 4500
    assert found() == hits
    said = run("optimize", "--data-dir", data_dir).stderr
    assert "nothing to merge" in said and "--quantize" not in said  # done already; small
    assert not after["quantized"]
    monkeypatch.setattr("twinsearch.cli.optimize.QUANTIZE_FROM", 4000)
    assert "hint: at 4,000 chunks and more" in run("optimize", "--data-dir", data_dir).stderr

    said = run("optimize", "--quantize", "--data-dir", data_dir).stderr
    assert "int8-quantized" in said and "hint" not in said
    [quantized] = json.loads(run("info", "--json", "--data-dir", data_dir).stdout)["collections"]
    assert quantized["quantized"] and quantized["chunks"] == 4500
    assert "int8-quantized" in run("info", "--data-dir", data_dir).stdout
    assert found() == hits  # rescored on the originals
