"""Where a batch gets a provider for each sample: the provider registry by name, or recorded transcripts.

A sample gets its own provider (closed when the sample ends). A sample resumed mid-way is told how
many turns its checkpoint already holds, so a replayed transcript continues at the reply for the next
turn instead of answering again from the top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from agent.providers import Provider, make_provider
from agent.providers.scripted import ScriptedProvider
from kernelwright.domain import Problem
from kernelwright.errors import UserError
from kernelwright.settings import Settings

__all__ = ["ProviderSource", "RegistrySource", "TranscriptSource", "provider_source"]


class ProviderSource(Protocol):
    """Builds the provider of one sample; `turns_done` turns were already answered (0 for a fresh run)."""

    async def __call__(self, model: str, problem: Problem, turns_done: int) -> Provider: ...


class RegistrySource:
    """A provider from the registry (`openai`, `groq`, ...) per sample, with fixed extra options."""

    def __init__(self, name: str, settings: Settings, **options: Any) -> None:
        self.name = name
        self.settings = settings
        self.options = options

    async def __call__(self, model: str, problem: Problem, turns_done: int) -> Provider:
        return make_provider(self.name, model, self.settings, **self.options)


class TranscriptSource:
    """Replays a recorded conversation per problem from a folder (for offline batches and tests).

    The transcript of a problem is `<folder>/L1_19.json` (its key, `/` as `_`), else `<name>.json`,
    else `default.json`.
    """

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise UserError(f"transcripts folder {folder} does not exist")
        self.folder = folder

    def path_for(self, problem: Problem) -> Path:
        for stem in (problem.key.replace("/", "_"), problem.name, "default"):
            path = self.folder / f"{stem}.json"
            if path.is_file():
                return path
        raise UserError(
            f"no transcript for problem {problem.key} in {self.folder}: add "
            f"{problem.key.replace('/', '_')}.json, {problem.name}.json or default.json"
        )

    async def __call__(self, model: str, problem: Problem, turns_done: int) -> Provider:
        provider = ScriptedProvider.from_transcript(self.path_for(problem))
        for _ in range(min(turns_done, provider.remaining)):
            await provider.complete([])  # fast-forward past the replies the checkpoint already holds
        provider.requests.clear()
        return provider


def provider_source(name: str, settings: Settings, options: dict[str, Any]) -> ProviderSource:
    """The source a batch's stored options describe (`transcripts` for replays, else the registry)."""
    transcripts = options.get("transcripts")
    if name == "scripted":
        if not transcripts:
            raise UserError("the scripted provider replays transcripts: pass --transcripts FOLDER")
        return TranscriptSource(Path(str(transcripts)))
    kwargs = {k: v for k, v in options.items() if k == "base_url" and v}
    return RegistrySource(name, settings, **kwargs)
