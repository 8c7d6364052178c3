"""Turn a problem (and, when fixing, its diagnostics) into a query for the retriever.

The raw problem source would make a poor query: most of it is boilerplate (imports, `get_inputs`)
whose words match every guide. What decides which guide sections help is the operators `Model`
uses and the target; when fixing a compile error, it is the instruction and identifier names the
compiler complained about, which the guides on errors mention verbatim. Messages go through
`rag.diagnostics.strip_noise` first (paths, hex addresses and numbered registers dropped; nvcc's
built-in types named by their variables, `dim3` -> `blockDim gridDim`), as a pasted log does in
`rag.hybrid.search`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence

from kernelwright.domain import Diagnostic, Problem, Target
from rag.diagnostics import strip_noise

__all__ = ["MAX_QUERY_TERMS", "build_query", "problem_operations"]

MAX_QUERY_TERMS = 48
"""Long queries dilute BM25 scores; past this, later (less specific) terms are dropped."""

_TARGET_TERMS: dict[Target, str] = {
    Target.PTX: "ptx .entry .param ld.param cvta.to.global ld.global st.global %tid.x mad.lo.s32",
    Target.CUDA: "cuda extern __global__ blockIdx threadIdx grid-stride",
    Target.TRITON: "triton tl.program_id tl.load tl.store mask tl.constexpr",
    Target.TT_METAL: "tt-metal reader writer compute circular buffer",
}
_TARGET_WORD: dict[Target, str] = {
    Target.PTX: "ptx",
    Target.CUDA: "cuda",
    Target.TRITON: "triton",
    Target.TT_METAL: "tt-metal",
}

# (operator names, words describing the kind of kernel they need)
_FAMILY_TABLE: tuple[tuple[str, str], ...] = (
    ("matmul mm bmm addmm baddbmm linear einsum tensordot bilinear", "matmul tile shared memory tl.dot"),
    (
        "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d",
        "convolution tile shared memory",
    ),
    ("softmax log_softmax softmin", "softmax reduction max exp sum"),
    (
        "layer_norm layernorm batch_norm batchnorm1d batchnorm2d batchnorm3d group_norm groupnorm "
        "instance_norm instancenorm2d rms_norm rmsnorm",
        "normalization reduction mean variance",
    ),
    ("sum mean max min amax amin argmax argmin prod norm var std logsumexp cumsum cumprod", "reduction"),
    (
        "max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d maxpool1d maxpool2d maxpool3d "
        "avgpool1d avgpool2d avgpool3d adaptive_avg_pool2d adaptiveavgpool2d",
        "pooling reduction",
    ),
    (
        "relu relu6 gelu sigmoid tanh silu elu selu leaky_relu leakyrelu hardtanh hardsigmoid hardswish "
        "softplus softsign mish exp log abs sqrt rsqrt clamp clip pow neg sign add sub mul div where "
        "minimum maximum",
        "elementwise",
    ),
)
_FAMILIES = tuple((frozenset(names.split()), words) for names, words in _FAMILY_TABLE)
_IGNORED_TEXT = (
    "super __init__ forward view reshape size contiguous to float half double permute transpose unsqueeze "
    "squeeze flatten expand expand_as cuda cpu dim numel item parameter zeros ones randn rand empty "
    "empty_like zeros_like ones_like tensor module sequential modulelist range len int list tuple "
    "isinstance getattr setattr register_buffer clone detach type t"
)
_IGNORED_CALLS = frozenset(_IGNORED_TEXT.split())
_BINARY_OPS: dict[type[ast.operator], str] = {
    ast.MatMult: "matmul",
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.Pow: "pow",
}
_QUOTED = re.compile(r"""'([^'\n]{1,80})'|"([^"\n]{1,80})"|`([^`\n]{1,80})`""")
_IDENTIFIER = re.compile(r"%?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*|\.[A-Za-z_][A-Za-z0-9_.]*")
_NUMBERED_REGISTER = re.compile(r"^%[a-z]+\d+$")
_NOISE_TEXT = (
    "error errors warning line file candidate candidate.py the and for with this that from not was were "
    "has have are into instruction expected found cannot could should must hint"
)
_NOISE = frozenset(_NOISE_TEXT.split())
_MAX_DIAGNOSTICS = 5
_MAX_TERMS_PER_DIAGNOSTIC = 12


def problem_operations(problem: Problem) -> list[str]:
    """Operator names used by the problem's `Model` (calls, `nn.*` modules, binary operators), in
    order of first appearance, lower-cased; empty when the source cannot be read."""
    try:
        tree = ast.parse(problem.source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    model = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"), None)
    if model is None:
        return []
    found: list[str] = []
    for node in ast.walk(model):
        name = ""
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                is_self_module = isinstance(func.value, ast.Name) and func.value.id == "self"
                name = "" if is_self_module else func.attr
            elif isinstance(func, ast.Name):
                name = func.id
        elif isinstance(node, ast.BinOp):
            name = _BINARY_OPS.get(type(node.op), "")
        name = name.lower()
        if name and name not in _IGNORED_CALLS and name not in found:
            found.append(name)
    return found


def _family_terms(operations: Iterable[str]) -> list[str]:
    terms: list[str] = []
    for operation in operations:
        for names, words in _FAMILIES:
            if operation in names or operation.rstrip("_") in names:
                terms.extend(words.split())
                break
    return terms


def _diagnostic_terms(diagnostic: Diagnostic) -> list[str]:
    """Instruction, directive and identifier tokens of one diagnostic, most specific first."""
    text = strip_noise(diagnostic.message)
    special: list[str] = []
    for match in _QUOTED.finditer(text):
        quoted = next(group for group in match.groups() if group is not None)
        special.extend(_IDENTIFIER.findall(quoted))
    plain: list[str] = []
    for token in _IDENTIFIER.findall(text):
        if "." in token or "_" in token or token.startswith("%"):
            special.append(token)
        elif len(token) >= 4:
            plain.append(token)
    tool = diagnostic.code.split(".")[0]
    terms = [*special, tool, *plain]
    kept: list[str] = []
    for term in terms:
        lowered = term.lower().rstrip(".")
        if not lowered or lowered in _NOISE or _NUMBERED_REGISTER.match(lowered) or lowered in kept:
            continue
        kept.append(lowered)
    return kept[:_MAX_TERMS_PER_DIAGNOSTIC]


def build_query(problem: Problem, target: Target, diagnostics: Sequence[Diagnostic] = ()) -> str:
    """A keyword query for the retriever.

    Proposing: the problem's operator names, what kind of kernel they call for (matmul, reduction,
    elementwise, ...) and the target's core vocabulary. Refining (with diagnostics): the diagnostics'
    instruction and identifier tokens first (errors before warnings), then the target and operators.
    """
    operations = problem_operations(problem)
    terms: list[str] = []
    if diagnostics:
        ordered = sorted(diagnostics, key=lambda d: not d.is_error)[:_MAX_DIAGNOSTICS]
        for diagnostic in ordered:
            terms.extend(_diagnostic_terms(diagnostic))
        terms.append(_TARGET_WORD[target])
        terms.extend(operations)
    else:
        terms.extend(operations)
        family = _family_terms(operations)
        if target != Target.TRITON:
            family = [t for t in family if not t.startswith("tl.")]
        terms.extend(family)
        terms.extend(_TARGET_TERMS[target].split())
    unique = list(dict.fromkeys(t for t in terms if t))
    return " ".join(unique[:MAX_QUERY_TERMS])
