"""Embedding functions: the hashing embedding, Chroma registration across processes, the OpenAI-
compatible endpoint through the real SDK over a MockTransport, and MiniLM's no-download rule."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from kernelwright.errors import ConfigError, MissingAPIKeyError, ModelHTTPError
from kernelwright.settings import Settings
from rag import embeddings
from rag.embeddings import HashingEmbedding, OpenAICompatibleEmbedding, make_embedding


def test_hashing_is_deterministic_normalised_and_meaningful() -> None:
    ef = HashingEmbedding()
    docs = ["shared memory tile for matmul", "shared memory tile for matmul", "DRAM loopback copy"]
    vectors = ef(docs)
    assert len(vectors) == 3 and vectors[0].shape == (384,)
    assert np.allclose(vectors[0], vectors[1])
    assert float(np.linalg.norm(vectors[0])) == pytest.approx(1.0, abs=1e-5)
    query = ef(["matmul with a shared memory tile"])[0]
    assert float(query @ vectors[0]) > float(query @ vectors[2])
    assert HashingEmbedding.build_from_config(ef.get_config()).dim == 384


_CREATE = """
import chromadb
from chromadb.config import Settings
from rag.embeddings import HashingEmbedding
client = chromadb.PersistentClient(path={path!r}, settings=Settings(anonymized_telemetry=False))
c = client.create_collection("notes", embedding_function=HashingEmbedding())
c.add(ids=["a", "b"], documents=["circular buffer reserve back", "matmul shared memory tiles"])
"""
_QUERY = """
import json
import chromadb
from chromadb.config import Settings
{imports}
client = chromadb.PersistentClient(path={path!r}, settings=Settings(anonymized_telemetry=False))
c = client.get_collection("notes")
r = c.query(query_texts=["shared memory matmul"], n_results=1)
print(json.dumps({{"ids": r["ids"][0], "ef": c.configuration_json["embedding_function"]["name"]}}))
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_hashing_collection_is_queryable_from_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "chroma")
    created = _python(_CREATE.format(path=path))
    assert created.returncode == 0, created.stderr
    # A later process that imports kernelwright's embeddings (as `rag` does) rebuilds the function
    # from the collection's config through Chroma's registry: no embedding function is passed.
    queried = _python(_QUERY.format(path=path, imports="import rag.embeddings"))
    assert queried.returncode == 0, queried.stderr
    result = json.loads(queried.stdout.strip().splitlines()[-1])
    assert result == {"ids": ["b"], "ef": "kernelwright_hashing"}
    # Without the registration the collection cannot be queried: the reason it must be registered.
    unregistered = _python(_QUERY.format(path=path, imports=""))
    assert unregistered.returncode != 0
    assert "kernelwright_hashing not found" in unregistered.stderr


def _embedding_body(count: int, dim: int = 4) -> dict[str, Any]:
    return {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": i, "embedding": [float(i + 1)] + [0.0] * (dim - 1)}
            for i in reversed(range(count))  # out of order on purpose: the client sorts by index
        ],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


def test_openai_compatible_endpoint_through_the_real_sdk() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=_embedding_body(len(json.loads(request.content)["input"])))

    settings = Settings(
        _env_file=None, embedding="openai", openai_api_key="sk-test", embedding_base_url="http://emb.local/v1"
    )
    ef = make_embedding(settings, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert isinstance(ef, OpenAICompatibleEmbedding)
    vectors = ef(["a", "b"])
    assert [float(v[0]) for v in vectors] == [1.0, 2.0]
    sent = json.loads(requests[0].content)
    assert sent["model"] == "text-embedding-3-small" and sent["input"] == ["a", "b"]
    assert str(requests[0].url) == "http://emb.local/v1/embeddings"
    assert requests[0].headers["authorization"] == "Bearer sk-test"
    assert ef.get_config() == {"model": "text-embedding-3-small", "base_url": "http://emb.local/v1"}
    assert "sk-test" not in json.dumps(ef.get_config())


def test_openai_errors_are_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "bad key", "type": "auth"}})

    ef = OpenAICompatibleEmbedding(
        "m", api_key="sk-bad", http_client=httpx.Client(transport=httpx.MockTransport(handler)), max_retries=0
    )
    with pytest.raises(ModelHTTPError) as info:
        ef(["x"])
    assert info.value.status_code == 401
    with pytest.raises(MissingAPIKeyError):
        OpenAICompatibleEmbedding.from_settings(Settings(_env_file=None, openai_api_key=None))


def test_minilm_without_cached_model_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "DOWNLOAD_PATH", tmp_path / "none")
    monkeypatch.setattr(embeddings, "packaged_model_dir", lambda: None)  # the `minilm` extra, if installed
    with pytest.raises(ConfigError, match="KERNELWRIGHT_EMBEDDING=hashing"):
        make_embedding(Settings(_env_file=None, embedding="minilm"))
    folder = tmp_path / "none" / "onnx"
    folder.mkdir(parents=True)
    for name in embeddings._MINILM_FILES:
        (folder / name).write_text("x")
    assert embeddings.minilm_available()
