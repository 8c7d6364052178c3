"""Prompt templates and their rendering: what the agent tells the model at each step."""

from prompts.render import (
    AttemptSummary,
    PromptInput,
    RenderedPrompt,
    Step,
    ptx_isa_for_arch,
    render_prompt,
    template_names,
    template_version,
)

__all__ = [
    "AttemptSummary",
    "PromptInput",
    "RenderedPrompt",
    "Step",
    "ptx_isa_for_arch",
    "render_prompt",
    "template_names",
    "template_version",
]
