"""How one draw's tensors travel between the reference and the candidate worker (stdlib + torch only).

On a GPU the reference allocates the candidate's input copies and its output buffers and shares them
through CUDA IPC handles (pickled by the reference, read by the candidate: that direction is trusted).
The candidate clones the inputs into its own memory and copies its outputs into the shared buffers; the
reference never unpickles anything the candidate wrote. Nothing crosses the host: multi-GB KernelBench
tensors move in microseconds. On the CPU, tensors go through files; the reference reads the candidate's
file with `torch.load(weights_only=True)` (plain tensors only, never pickled code).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

__all__ = ["export_draw", "import_inputs", "read_cpu_outputs", "write_outputs"]


def _draw_file(exchange: Path, index: int) -> Path:
    return exchange / f"draw_{index}.pkl"


def export_draw(
    exchange: Path, index: int, shared_inputs: list[Any], expected: list[Any], gpu: bool
) -> list[Any]:
    """Publish draw `index` (`shared_inputs`: copies made for the candidate) with output buffers shaped
    like `expected`; returns what the reference must keep alive until the draw is checked."""
    import torch

    if not gpu:
        torch.save({"inputs": shared_inputs}, exchange / f"draw_{index}.pt")
        return []
    from torch.multiprocessing.reductions import reduce_tensor

    buffers = [torch.empty_like(t) for t in expected]
    torch.cuda.synchronize()
    payload = {
        "inputs": [
            ("tensor", reduce_tensor(x))  # type: ignore[no-untyped-call]
            if isinstance(x, torch.Tensor)
            else ("value", x)
            for x in shared_inputs
        ],
        "outputs": [reduce_tensor(b) for b in buffers],  # type: ignore[no-untyped-call]
    }
    _draw_file(exchange, index).write_bytes(pickle.dumps(payload))
    return [shared_inputs, buffers]


def _rebuild(reduced: Any) -> Any:
    function, args = reduced
    return function(*args)


def import_inputs(
    exchange: Path, index: int, gpu: bool, device: Any
) -> tuple[list[Any], list[Any], list[Any]]:
    """The candidate's own copies of draw `index`'s inputs, the shared originals (views of the
    reference's copies on a GPU: to check later that forward left its inputs alone), and the shared
    output buffers (GPU only)."""
    import torch

    if not gpu:
        bundle = torch.load(exchange / f"draw_{index}.pt", weights_only=True)
        shared = [x.to(device) if isinstance(x, torch.Tensor) else x for x in bundle["inputs"]]
        return [x.clone() if isinstance(x, torch.Tensor) else x for x in shared], shared, []
    payload = pickle.loads(_draw_file(exchange, index).read_bytes())  # written by the reference worker
    shared = [_rebuild(item) if kind == "tensor" else item for kind, item in payload["inputs"]]
    inputs = [x.clone() if isinstance(x, torch.Tensor) else x for x in shared]
    buffers = [_rebuild(item) for item in payload["outputs"]]
    torch.cuda.synchronize()
    return inputs, shared, buffers


def write_outputs(exchange: Path, index: int, outputs: list[Any], buffers: list[Any], gpu: bool) -> None:
    """Hand the outputs to the reference: into the shared buffers (GPU) or a file (CPU)."""
    import torch

    if not gpu:
        torch.save([t.detach().to("cpu") for t in outputs], exchange / f"out_{index}.pt")
        return
    for out, buffer in zip(outputs, buffers, strict=True):
        if out.shape == buffer.shape and out.dtype == buffer.dtype:
            buffer.copy_(out)
    torch.cuda.synchronize()


def read_cpu_outputs(exchange: Path, index: int) -> list[Any]:
    import torch

    path = exchange / f"out_{index}.pt"
    data = torch.load(path, weights_only=True, map_location="cpu")
    path.unlink(missing_ok=True)
    if not isinstance(data, list) or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError("the candidate's output file does not hold a list of tensors")
    return data
