"""Fine-tuning a tiny model built in code: twin, half-twin, the losses, the CLI, compare."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.training.data import TrainingData, holdout, read
from twinsearch.training.trainer import TrainConfig, train

pytestmark = pytest.mark.slow

WORDS = (
    "tide moon ocean wave salt harbor river glacier volcano desert forest orchid fern "
    "copper iron carbon neon helium argon violin cello piano drum guitar flute trumpet "
    "falcon eagle heron otter beaver badger walnut almond cherry lemon mango papaya"
).split()


def _pairs(n: int = 48, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        a, b, c = rng.sample(WORDS, 3)
        records.append({"query": f"{a} {b}", "positive": f"notes on {a}, {b} and {c} no. {i}"})
    return records


class Recorder:
    def __init__(self, stop_at: int | None = None) -> None:
        self.losses: list[float] = []
        self.stages: list[str] = []
        self.evaluations: list[dict[str, float]] = []
        self.stop_at = stop_at

    def stage(self, text: str) -> None:
        self.stages.append(text)

    def start(self, total_steps: int) -> None:
        self.total = total_steps

    def step(self, done: int, loss: float | None) -> None:
        if loss is not None:
            self.losses.append(loss)
        if self.stop_at is not None and done >= self.stop_at:
            raise KeyboardInterrupt

    def evaluated(self, metrics: dict[str, float]) -> None:
        self.evaluations.append(metrics)

    def finish(self) -> None:
        pass


def _data(tmp_path: Path, records: list[dict[str, object]], name: str = "d.jsonl") -> TrainingData:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return read(path)


def _config(tiny_model: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = {
        "base": str(tiny_model),
        "epochs": 4,
        "batch_size": 8,
        "mini_batch_size": 4,
        "learning_rate": 5e-4,
        "window": 32,
        "precision": "fp32",
    }
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def test_twin_mnrl_learns_saves_and_reloads(tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from twinsearch.encoders import load_encoder

    data = _data(tmp_path, _pairs(60))
    train_set, val = holdout(data, 0.2, seed=1)
    recorder = Recorder()
    out = tmp_path / "model"
    result = train(train_set, val, out, _config(tiny_model), progress=recorder)

    assert result.steps == recorder.total == 4 * -(-len(train_set) // 8)  # 4 epochs, batch 8
    first, last = np.mean(recorder.losses[:3]), np.mean(recorder.losses[-3:])
    assert last < 0.85 * first, recorder.losses
    assert result.metric == "val_cosine_ndcg@10"
    assert len(recorder.evaluations) == 4  # one held-out evaluation per epoch
    assert result.after[result.metric] > result.before[result.metric]
    # The kept model is the epoch that did best on the held-out queries.
    assert result.after[result.metric] == max(
        e[f"eval_{result.metric}"] for e in recorder.evaluations
    )
    assert result.best_step is not None

    reloaded = SentenceTransformer(str(out))
    assert reloaded.max_seq_length == 64  # the base model's, not the training window
    # What was saved is what scored best: measured again from the folder.
    from twinsearch.training.trainer import _retrieval_evaluator

    reloaded.max_seq_length = 32
    again = _retrieval_evaluator(train_set, val, 12)(reloaded)
    assert again[result.metric] == pytest.approx(result.after[result.metric], abs=1e-4)
    record = json.loads((out / "twinsearch_training.json").read_text())
    assert record["result"]["train_examples"] == len(train_set)
    card = (out / "README.md").read_text()
    assert "base_model: " in card and "| loss | mnrl |" in card and "val_cosine_ndcg@10" in card
    assert not (out / ".checkpoints").exists()
    assert load_encoder(str(out)).fingerprint != load_encoder(str(tiny_model)).fingerprint


def test_same_seed_same_model(tiny_model: Path, tmp_path: Path) -> None:
    data = _data(tmp_path, _pairs(16))
    config = _config(tiny_model, epochs=1)
    from twinsearch.encoders import load_encoder

    first = train(data, None, tmp_path / "a", config)
    train(data, None, tmp_path / "b", config)
    assert first.notes and "no held-out split" in first.notes[0]
    a, b = (load_encoder(str(tmp_path / n)).fingerprint for n in "ab")
    assert a == b


def test_arch_auto_trains_both_and_keeps_the_better_on_the_held_out_split(
    tiny_model: Path, tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    data = _data(tmp_path, _pairs(60))
    train_set, val = holdout(data, 0.2, seed=1)
    out = tmp_path / "auto"
    result = train(train_set, val, out, _config(tiny_model, arch="auto", epochs=2))

    assert set(result.candidates) == {"twin", "half-twin"}
    assert result.candidates["twin"] != result.candidates["half-twin"]
    best = max(result.candidates, key=result.candidates.__getitem__)
    assert result.arch == best and result.kept == "fine-tuned"
    assert result.after[result.metric] == result.candidates[best]
    assert any("--arch auto" in note and f"kept {best}" in note for note in result.notes)
    routed = any(type(m).__name__ == "Router" for m in SentenceTransformer(str(out)))
    assert routed == (best == "half-twin")
    record = json.loads((out / "twinsearch_training.json").read_text())
    assert record["config"]["arch"] == "auto" and record["result"]["arch"] == best
    assert f"| architecture | {best} |" in (out / "README.md").read_text()


def test_arch_auto_without_a_held_out_split_trains_one(tiny_model: Path, tmp_path: Path) -> None:
    data = _data(tmp_path, _pairs(16))
    result = train(data, None, tmp_path / "one", _config(tiny_model, arch="auto", epochs=1))
    assert result.arch == "twin" and result.candidates == {}


def test_the_base_is_kept_when_training_cannot_help(tiny_model: Path, tmp_path: Path) -> None:
    """Random pairs teach nothing, and the held-out queries are their own documents, which
    the base model already ranks first: no fine-tuned model can beat it there."""
    from twinsearch.encoders import load_encoder

    rng = random.Random(5)
    noise = [
        {"query": " ".join(rng.sample(WORDS, 2)), "positive": " ".join(rng.sample(WORDS, 4))}
        for _ in range(40)
    ]
    texts = [f"{r['query']} and {r['positive']}" for r in _pairs(30, seed=2)]
    held = _data(tmp_path, [{"query": t, "positive": t} for t in texts], "held.jsonl")
    out = tmp_path / "kept"
    result = train(_data(tmp_path, noise), None, out, _config(tiny_model), eval_data=held)

    assert result.kept == "base"
    assert result.before[result.metric] == pytest.approx(1.0)
    assert result.after[result.metric] <= result.before[result.metric]
    assert any("kept the base model" in note for note in result.notes)
    assert load_encoder(str(out)).fingerprint == load_encoder(str(tiny_model)).fingerprint
    assert "the base model, unchanged" in (out / "README.md").read_text()


@pytest.mark.parametrize("untie", [False, True])
def test_half_twin_routes_queries_and_documents_apart(
    tiny_model: Path, tmp_path: Path, untie: bool
) -> None:
    from sentence_transformers import SentenceTransformer

    from twinsearch.training.trainer import build_model

    start = build_model(str(tiny_model), "half-twin", untie)
    text = ["otter harbor"]
    # Untrained, the two sides are the base model: identity heads, or identical towers.
    assert np.allclose(start.encode_query(text), start.encode_document(text), atol=1e-6)

    data = _data(tmp_path, _pairs(24))
    out = tmp_path / "half"
    train(data, None, out, _config(tiny_model, arch="half-twin", untie=untie, epochs=2))
    model = SentenceTransformer(str(out))
    assert any(type(m).__name__ == "Router" for m in model)
    q, d = model.encode_query(text), model.encode_document(text)
    assert float(np.dot(q[0], d[0])) < 0.9999  # the routes now differ
    assert abs(float(np.linalg.norm(q[0])) - 1) < 1e-5  # still unit vectors for cosine

    # The shared-trunk half-twin also gets the torch-free query path, heads included.
    from twinsearch.encoders import load_encoder, onnx

    encoder = load_encoder(str(out))
    exported = onnx.export(encoder, tmp_path / "models")
    if untie:
        assert exported is None  # two transformers: searches use torch
        return
    assert exported is not None
    fast = onnx.load(tmp_path / "models", encoder.fingerprint)
    queries = ["otter harbor", "a longer query about falcons and lemons"]
    assert np.allclose(fast.encode_queries(queries), encoder.encode_queries(queries), atol=1e-4)
    assert np.allclose(fast.encode_documents(queries), encoder.encode_documents(queries), atol=1e-4)


def test_contrastive_on_labelled_pairs_calibrates_a_threshold(
    tiny_model: Path, tmp_path: Path
) -> None:
    rng = random.Random(5)
    records: list[dict[str, object]] = []
    for i in range(60):
        a, b, c, d = rng.sample(WORDS, 4)
        records.append({"text1": f"{a} {b} {i}", "text2": f"{b} {a} {i}", "label": 1})
        records.append({"text1": f"{a} {b} {i}", "text2": f"{c} {d}", "label": 0})
    data = _data(tmp_path, records)
    train_set, val = holdout(data, 0.2, seed=1)
    out = tmp_path / "verifier"
    result = train(train_set, val, out, _config(tiny_model, loss="online-contrastive", epochs=2))
    assert result.metric == "val_accuracy"
    assert result.threshold is not None and -1 <= result.threshold <= 1
    assert result.after["val_accuracy"] >= 0.5

    runner = CliRunner()
    same = runner.invoke(app, ["compare", "otter heron", "heron otter", "-m", str(out), "--json"])
    assert same.exit_code == 0, same.output
    verdict = json.loads(same.stdout)
    assert verdict["threshold"] == pytest.approx(result.threshold)
    assert verdict["same"] == (verdict["similarity"] >= result.threshold)


def test_triplet_and_contrastive_need_negatives_or_mining(tiny_model: Path, tmp_path: Path) -> None:
    from twinsearch.errors import SourceError
    from twinsearch.training.trainer import _mine, build_model

    data = _data(tmp_path, _pairs(16))
    with pytest.raises(SourceError, match="--hard-negatives N"):
        train(data, None, tmp_path / "t", _config(tiny_model, loss="triplet"))
    # Mined from the corpus, the negatives make triplets; the positive itself is never one.
    config = _config(tiny_model, loss="triplet", hard_negatives=2, epochs=1)
    result = train(data, None, tmp_path / "t", config)
    assert result.mined > 0
    # The same mining, from the same model at the same window, shows what was added.
    model = build_model(str(tiny_model), "twin", False)
    model.max_seq_length = config.window
    mined, count = _mine(model, data, config, Recorder())
    assert count == result.mined
    assert any(pair.negatives for pair in mined.pairs)
    for pair in mined.pairs:
        assert pair.positive not in pair.negatives
    assert not any(pair.negatives for pair in data.pairs)  # the caller's data is left as it was


def test_mining_embeds_the_corpus_on_the_fast_path(tiny_model: Path, tmp_path: Path) -> None:
    from twinsearch.session import mining_encoder
    from twinsearch.settings import Settings
    from twinsearch.training.trainer import _mine, build_model

    data = _data(tmp_path, _pairs(16))
    config = _config(tiny_model, loss="triplet", hard_negatives=2, epochs=1)
    model = build_model(str(tiny_model), "twin", False)
    model.max_seq_length = config.window
    made: list[Any] = []

    def documents(base: Any, texts: Any) -> Any:
        settings = Settings(data_dir=tmp_path / "data", runtime="onnx", threads=2)
        made.append(mining_encoder(settings, base, "base"))
        return made[-1]

    fast, count = _mine(model, data, config, Recorder(), documents)
    [encoder] = made
    assert (encoder.choice.runtime, encoder.choice.precision) == ("onnx", "fp32")
    # The same negatives as the model itself on torch finds.
    plain, expected = _mine(model, data, config, Recorder())
    assert count == expected > 0
    assert [p.negatives for p in fast.pairs] == [p.negatives for p in plain.pairs]


def test_ctrl_c_keeps_a_loadable_model(tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    data = _data(tmp_path, _pairs(32))
    out = tmp_path / "stopped"
    result = train(data, None, out, _config(tiny_model), progress=Recorder(stop_at=2))
    assert result.interrupted and result.steps == 2
    assert "interrupted" in result.notes[-1]
    SentenceTransformer(str(out))


def test_train_command_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _pairs(40)))
    out = tmp_path / "cli-model"
    args = ["train", str(path), "-o", str(out), "-m", str(tiny_model), "--epochs", "1",
            "--batch-size", "8", "--window", "32", "--precision", "fp32"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    # Progress goes through twinsearch's own report; no library prints bars of its own.
    assert "Computing widget examples" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["train_examples"] == 36 and summary["held_out_examples"] == 4
    assert "val_cosine_ndcg@10" in summary["before"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1
    assert "is not empty" in again.stderr
    replaced = CliRunner().invoke(app, [*args, "--overwrite", "--json"])
    assert replaced.exit_code == 0, replaced.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    kept = CliRunner().invoke(app, [*args[:2], "-o", str(tmp_path / "notes"), "--overwrite"])
    assert kept.exit_code == 1 and "other than a model" in kept.stderr
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    a_file = CliRunner().invoke(app, [*args[:2], "-o", str(path)])
    assert a_file.exit_code == 1 and "is a file" in a_file.stderr
    untied = CliRunner().invoke(app, [*args[:2], "-o", str(tmp_path / "x"), "--untie"])
    assert untied.exit_code == 1 and "--untie goes with --arch half-twin" in untied.stderr
    unused = CliRunner().invoke(app, [*args[:2], "-o", str(tmp_path / "x"), "--margin", "0.2"])
    assert unused.exit_code == 1 and "--margin goes with --loss contrastive" in unused.stderr


def test_compare_without_a_threshold_says_how_to_get_one(tiny_model: Path) -> None:
    result = CliRunner().invoke(app, ["compare", "a cat", "a dog", "-m", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("similarity ")
    assert "--threshold" in result.stderr
    fixed = CliRunner().invoke(
        app, ["compare", "a cat", "a cat", "-m", str(tiny_model), "--threshold", "0.9"]
    )
    assert ": same (threshold 0.9000, --threshold)" in fixed.stdout


def test_bad_data_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text1,text2,label\na,b,yes\n")
    result = CliRunner().invoke(app, ["train", str(path), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "bad.csv:2" in result.stderr


def test_negatives_can_be_mined_from_an_existing_collection(
    tiny_model: Path, tmp_path: Path
) -> None:
    records = _pairs(24)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, record in enumerate(records):
        (docs / f"d{i}.txt").write_text(record["positive"])
    data_dir = tmp_path / "data"
    indexed = CliRunner().invoke(
        app,
        ["index", str(docs), "-m", str(tiny_model), "--chunk-overlap", "8",
         "--data-dir", str(data_dir)],
    )  # fmt: skip
    assert indexed.exit_code == 0, indexed.stderr
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["train", str(path), "-m", str(tiny_model), "--epochs", "1", "--batch-size", "8",
            "--window", "32", "--precision", "fp32", "--loss", "triplet", "--hard-negatives",
            "1", "--negatives-from", "default", "--data-dir", str(data_dir), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["train_examples"] > 0
    record = json.loads((tmp_path / "m" / "twinsearch_training.json").read_text())
    assert record["result"]["mined"] > 0

    other = CliRunner().invoke(
        app, ["index", str(docs), "-m", "hashing", "-c", "lexical", "--data-dir", str(data_dir)]
    )
    assert other.exit_code == 0
    args[args.index("default")] = "lexical"
    refused = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "m2")])
    assert refused.exit_code == 1 and "not the base model" in refused.stderr


def test_train_command_reports_in_columns_and_says_how_to_index(
    tiny_model: Path, tmp_path: Path
) -> None:
    import re

    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("tides follow the moon")
    indexed = CliRunner().invoke(
        app, ["index", str(docs), "-m", "hashing", "--data-dir", str(data_dir)]
    )
    assert indexed.exit_code == 0, indexed.stderr
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _pairs(40)))
    out = tmp_path / "model"
    args = ["train", str(path), "-o", str(out), "-m", str(tiny_model), "--epochs", "1",
            "--batch-size", "8", "--lr", "5e-4", "--window", "32", "--precision", "fp32",
            "--data-dir", str(data_dir)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kept the base model" not in result.stderr  # it learned: the hint is to re-index
    lines = result.stdout.splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.startswith("  ")]
    assert header.startswith("held-out (4 examples)") and len(rows) == 5
    cells = re.compile(r"\S+(?: \S+)*")  # two or more spaces apart
    for row in rows:
        assert [m.end() for m in cells.finditer(row)][1:] == [
            m.end() for m in cells.finditer(header)
        ][1:], "\n".join([header, row])
    # 'default' exists (built with another model): only a re-index puts this one to use.
    assert lines[-1].endswith(f"twinsearch index PATH --model {out} --reindex")
    assert "1 epoch of 5 steps" in result.stderr
    assert "" not in result.stderr.splitlines()  # no bar left behind off a terminal


def test_a_margin_of_zero_is_kept(tiny_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from twinsearch.training.trainer import _loss

    model = SentenceTransformer(str(tiny_model))
    for loss, attribute in [("contrastive", "margin"), ("triplet", "triplet_margin")]:
        assert getattr(_loss(model, _config(tiny_model, loss=loss, margin=0.0)), attribute) == 0
        assert getattr(_loss(model, _config(tiny_model, loss=loss)), attribute) == 0.5
