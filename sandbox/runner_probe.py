"""The health probe of a slot's worker pool; runs INSIDE a worker process (standard library + torch only).

    python -m sandbox.runner_probe      then send {"device": "cuda" | "cpu"} on stdin

It answers one line: {"event": "healthy", "device": name, "gpu": bool, "visible": CUDA_VISIBLE_DEVICES}
after a small computation checked on the device (so a GPU that cannot launch, or returns garbage, fails),
or {"event": "unhealthy", "message": ...}. The probe is started through the slot's executor exactly as a
candidate worker is, so it proves the whole path works: spawn (zygote fork or container), environment,
limits, CUDA context creation on the leased GPU, a launch, and the protocol.
"""

from __future__ import annotations

import os
import sys

from sandbox.runtime.protocol import Channel

__all__ = ["main"]


def _probe(device: str) -> dict[str, object]:
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            return {"event": "unhealthy", "message": "CUDA was expected but torch sees no GPU"}
        dev = torch.device("cuda", 0)
        name = torch.cuda.get_device_name(dev)
    else:
        dev, name = torch.device("cpu"), "cpu"
    values = torch.arange(1024, dtype=torch.float32, device=dev)
    total = float((values * 2.0).sum().item())
    if device == "cuda":
        torch.cuda.synchronize(dev)
    expected = 2.0 * 1023 * 1024 / 2
    if total != expected:
        return {"event": "unhealthy", "message": f"the probe computed {total}, expected {expected}"}
    return {
        "event": "healthy",
        "device": name,
        "gpu": device == "cuda",
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def main() -> int:
    channel = Channel.take_over_stdio()
    try:
        request = channel.receive()
        channel.send(**_probe(str(request.get("device", "cpu"))))
    except Exception as exc:  # noqa: BLE001 - any failure on the device is the answer, not a crash
        channel.send(event="unhealthy", message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
