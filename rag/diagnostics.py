"""Compiler output as search queries: one query per distinct message, without the noise.

A pasted ptxas or nvcc log is several questions at once (`Arguments mismatch for instruction 'add'`
*and* `Unknown symbol '%q5'`), and most of its words say nothing about where the answer is:

- the location (file path, line number) and severity prefix: dropped by `rag.lexical.clean_query`;
- numbered registers (`%r4`, `%q5`), hex addresses, temporary file names: unique strings that match
  nothing useful, or worse, the one page that happens to contain them;
- repeated messages (ptxas reports the same error for each use).

The rest of a message stays, requirements included: `Feature 'cp.async' requires .target sm_80 or
higher` is quoted verbatim on the page that explains it (measured: dropping the version and target
from such messages cost lexical search a fifth of its compiler-error hits).

What nvcc names by *type* is named in the docs by *variable*: an operand of type `dim3` is
`blockDim` or `gridDim`, one of type `uint3` is `threadIdx` or `blockIdx`; such messages get those
names added.

`search_messages` returns the messages to search for (one, for anything that is not compiler output);
the hybrid search joins them into one query. (Searching each message alone and fusing the rankings
was measured too: a message with no specific words, "Illegal vector size: 3", then gets as much say
as the one that names the instruction, and lexical recall on compiler errors fell by a tenth.)
"""

from __future__ import annotations

import re

from rag.lexical import clean_query

__all__ = ["MAX_MESSAGES", "is_diagnostic", "search_messages", "strip_noise"]

MAX_MESSAGES = 4
"""Past this, further messages are mostly consequences of the first ones."""

_PREFIX = re.compile(
    r"^\s*(?:ptxas\s+)?(?:\S+?(?:,\s*line\s+\d+;|\(\d+\):)\s*)?(?:error|fatal|warning)\s*:", re.IGNORECASE
)
_NUMBERED_REGISTER = re.compile(r"'%[A-Za-z]+\d+'|%[A-Za-z]+\d+\b")
_HEX = re.compile(r"\b0x[0-9A-Fa-f]+\b")
_PATH = re.compile(r"(?:/[\w.+-]+){2,}")
_LINE = re.compile(r"\b(?:line|col(?:umn)?)\s+\d+\b", re.IGNORECASE)
_BUILTIN_TYPES = {
    "dim3": "blockDim gridDim",
    "uint3": "threadIdx blockIdx",
}
_TYPE_WORD = re.compile(r"\b(" + "|".join(_BUILTIN_TYPES) + r")\b")


def is_diagnostic(query: str) -> bool:
    """Whether the query holds compiler output (a line with a location or severity prefix)."""
    return any(_PREFIX.match(line) for line in query.splitlines())


def strip_noise(message: str) -> str:
    """One message without numbered registers, hex addresses, paths and line numbers, and with the
    variables named for the built-in types it mentions (see the module docstring)."""
    text = _NUMBERED_REGISTER.sub(" ", message)
    text = _HEX.sub(" ", text)
    text = _PATH.sub(" ", text)
    text = _LINE.sub(" ", text)
    expansions = [_BUILTIN_TYPES[m] for m in dict.fromkeys(_TYPE_WORD.findall(text))]
    text = " ".join([text, *expansions])
    return " ".join(text.split())


def search_messages(query: str) -> list[str]:
    """The queries to search for `query`: for compiler output, each distinct message (noise stripped,
    at most `MAX_MESSAGES`, continuation lines joined to their message); otherwise the query itself,
    with any pasted compiler prefix removed."""
    if not is_diagnostic(query):
        return [clean_query(query)]
    messages: list[str] = []
    for line in query.splitlines():
        if not line.strip():
            continue
        if _PREFIX.match(line) or not messages:
            messages.append(clean_query(line))
        else:
            messages[-1] = f"{messages[-1]} {line.strip()}"
    cleaned = [strip_noise(m) for m in messages]
    unique = list(dict.fromkeys(m for m in cleaned if m and "assembly aborted" not in m.lower()))
    return unique[:MAX_MESSAGES] or [clean_query(query)]
