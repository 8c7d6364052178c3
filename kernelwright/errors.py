"""The one exception tree of kernelwright.

    KernelwrightError                 base of everything we raise on purpose
    ├── UserError                     the caller asked for something wrong: fix the call or the config
    │   ├── ConfigError               a setting is missing or invalid (names the variable to set)
    │   │   └── MissingAPIKeyError    a provider needs a key that is not set
    │   ├── ProblemError              a problem file/row is malformed (says what is missing)
    │   └── UnknownNameError          an unknown provider, target, model or problem id
    ├── ModelRequestError             an LLM call failed after its retries
    │   ├── ModelHTTPError            ... with an HTTP status from the provider
    │   └── ModelRequestsBlockedError real LLM calls are disabled (tests)
    ├── ScriptExhaustedError          a scripted (replay) provider ran out of replies
    ├── ToolchainError                a compiler/toolchain could not be run at all (not a compile error)
    └── SandboxError                  the sandbox itself failed (not the candidate): infrastructure
        └── DockerUnavailableError    the Docker daemon (or the worker image) cannot be used

Compile errors, mismatches, crashes and timeouts of *candidates* are not exceptions: they are
`Verdict`s and `Diagnostic`s, data that flows back to the model. Exceptions are translated into
HTTP or CLI errors only in `api/`.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DockerUnavailableError",
    "KernelwrightError",
    "MissingAPIKeyError",
    "ModelHTTPError",
    "ModelRequestError",
    "ModelRequestsBlockedError",
    "ProblemError",
    "SandboxError",
    "ScriptExhaustedError",
    "ToolchainError",
    "UnknownNameError",
    "UserError",
]


class KernelwrightError(Exception):
    """Base class of every error kernelwright raises on purpose."""


class UserError(KernelwrightError):
    """The caller asked for something that cannot work; the message says how to fix it."""


class ConfigError(UserError):
    """A setting is missing or invalid."""


class MissingAPIKeyError(ConfigError):
    """A provider needs an API key that is not configured."""

    def __init__(self, provider: str, env_vars: tuple[str, ...]) -> None:
        self.provider = provider
        self.env_vars = env_vars
        names = " or ".join(env_vars)
        super().__init__(
            f"The {provider!r} provider needs an API key: set {names} "
            f"(in the environment or in a .env file), or pass api_key=... explicitly."
        )


class ProblemError(UserError):
    """A problem definition is malformed."""


class UnknownNameError(UserError):
    """A name (provider, target, problem id...) is not known."""


class ModelRequestError(KernelwrightError):
    """An LLM request failed for good (after retries)."""


class ModelHTTPError(ModelRequestError):
    """The provider answered with an HTTP error status."""

    def __init__(self, provider: str, model: str, status_code: int, body: str) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.body = body
        super().__init__(f"{provider} model {model!r} answered HTTP {status_code}: {body[:500]}")


class ModelRequestsBlockedError(ModelRequestError):
    """Real LLM requests are disabled in this process (the test suite does this by default)."""


class ScriptExhaustedError(KernelwrightError):
    """A scripted provider was asked for more replies than it was given."""


class ToolchainError(KernelwrightError):
    """A toolchain could not be invoked at all (crashed, unreadable output)."""


class SandboxError(KernelwrightError):
    """The sandbox infrastructure failed; the candidate is not to blame."""


class DockerUnavailableError(SandboxError):
    """The Docker executor cannot work here: no daemon answers, or the worker image is missing."""
