"""Content-addressed verdicts: the same candidate, problem, toolchain, GPU and harness → the same verdict.

The key hashes the candidate's canonical source (its AST, so comments and formatting do not matter),
the problem source, the target, the compile toolchain, the GPU model, the harness version and the
verification options. Only verdicts that say something stable about the candidate are stored: outcomes
blamed on the machine (no GPU, missing toolchain, infrastructure) and timeouts are always re-run.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from kernelwright import __version__
from kernelwright.domain import VERDICT_SCHEMA, Candidate, Outcome, Problem, Verdict
from sandbox.verify import VerifyOptions

__all__ = ["HARNESS_VERSION", "ResultStore", "canonical_source_hash", "gpu_model", "verdict_key"]

HARNESS_VERSION = f"kernelwright-{__version__}/{VERDICT_SCHEMA}"
_NOT_STORED = {Outcome.TIMEOUT, Outcome.NO_GPU, Outcome.TOOLCHAIN_MISSING, Outcome.INFRASTRUCTURE}


def canonical_source_hash(source: str) -> str:
    """sha256 of the module's AST dump when it parses (comments and layout ignored), else of the text."""
    try:
        canonical = ast.unparse(ast.parse(source))
    except (SyntaxError, ValueError):
        canonical = source.replace("\r\n", "\n")
    return hashlib.sha256(canonical.encode()).hexdigest()


@lru_cache(maxsize=1)
def gpu_model() -> str:
    """The GPU's name as nvidia-smi reports it, or "cpu" where there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "cpu"
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "cpu"
    first = done.stdout.strip().splitlines()[:1]
    return first[0].strip() if done.returncode == 0 and first else "cpu"


def verdict_key(
    problem: Problem, candidate: Candidate, toolchain: str, device: str, options: VerifyOptions
) -> str:
    material = {
        "candidate": canonical_source_hash(candidate.source),
        "problem": hashlib.sha256(problem.source.encode()).hexdigest(),
        "target": candidate.target.value,
        "toolchain": toolchain,
        "device": device,
        "harness": HARNESS_VERSION,
        "options": {k: v for k, v in asdict(options).items() if k not in ("keep_scratch", "timeout_s")},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class ResultStore:
    """Verdicts as JSON files named by key, written atomically (safe under concurrent writers)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Verdict | None:
        path = self._path(key)
        try:
            verdict = Verdict.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return verdict.model_copy(update={"from_store": True})

    def put(self, key: str, verdict: Verdict) -> bool:
        """Store `verdict` unless its outcome must always be re-run; True when stored."""
        if verdict.outcome in _NOT_STORED:
            return False
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(verdict.model_dump_json(), encoding="utf-8")
        temp.replace(path)
        return True
