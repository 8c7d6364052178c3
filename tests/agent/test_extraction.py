"""Code extraction from model replies: real-world reply shapes, failures as diagnostics, never raises."""

from __future__ import annotations

import ast
import random
from typing import cast

import pytest

from agent.extraction import MODULE_FILE, Extraction, extract_candidate_code
from kernelwright.domain import Severity, Target

MODULE = """import torch
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0), mask=mask)


class ModelNew(torch.nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        relu_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
"""

PTX_TEXT = """.version 7.8
.target sm_90
.address_size 64

.visible .entry relu_f32(.param .u64 p_in, .param .u64 p_out, .param .u32 p_n)
{
    ret;
}"""

PTX_MODULE = """import torch
from sandbox.runtime import load_ptx


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_ptx(PTX).get_function("relu_f32")

    def forward(self, x):
        out = torch.empty_like(x)
        self.kernel(grid=(1, 1, 1), block=(256, 1, 1), args=(x, out, x.numel()), shared_mem=0)
        return out
"""


def _codes(extraction: Extraction) -> list[str]:
    return [d.code for d in extraction.diagnostics]


def _fenced(code: str, tag: str = "python", fence: str = "```") -> str:
    return f"{fence}{tag}\n{code.rstrip()}\n{fence}"


def test_single_block_with_prose() -> None:
    reply = f"I'll use one program per 1024 elements.\n\n{_fenced(MODULE)}\n\nThis should be fast."
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE
    assert extraction.diagnostics == ()
    assert extraction.blocks == 1
    assert extraction.ok


@pytest.mark.parametrize(
    "opening",
    [
        "```python",
        "```py",
        "```Python",
        "```",
        "~~~python",
        "~~~",
        "```python3",
        "```{.python}",
        '```python title="model.py"',
        "````python",
    ],
)
def test_fence_variants(opening: str) -> None:
    closing = opening[:4] if opening.startswith("````") else opening[:3]
    reply = f"Here it is:\n{opening}\n{MODULE}{closing}\nDone."
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE, opening
    assert extraction.ok


def test_indented_fence_in_a_list_item() -> None:
    body = "\n".join(("   " + line) if line else "" for line in MODULE.splitlines())
    reply = f"1. The module:\n   ```python\n{body}\n   ```\n"
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE


def test_crlf_line_endings() -> None:
    reply = _fenced(MODULE).replace("\n", "\r\n")
    assert extract_candidate_code(reply, Target.TRITON).code == MODULE


def test_picks_the_model_new_block_among_others() -> None:
    usage = "model = ModelNew()\nprint(model(torch.randn(4)))"
    reply = (
        f"The kernel idea:\n{_fenced('offs = pid * BLOCK + tl.arange(0, BLOCK)')}\n"
        f"Full module:\n{_fenced(MODULE)}\nUsage:\n{_fenced(usage)}\n"
        f"{_fenced('pip install triton', 'bash')}"
    )
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE
    assert extraction.blocks == 4


def test_last_complete_model_new_block_wins() -> None:
    first = MODULE.replace("BLOCK=1024", "BLOCK=256")
    reply = f"Draft:\n{_fenced(first)}\nImproved:\n{_fenced(MODULE)}\n"
    assert extract_candidate_code(reply, Target.TRITON).code == MODULE


def test_a_later_fragment_does_not_beat_a_complete_module() -> None:
    fragment = "class ModelNew(torch.nn.Module):\n    def forward(self, x):\n"
    fragment += "        out = ...\n        relu_kernel[("
    reply = f"{_fenced(MODULE)}\nThe key change is here:\n{_fenced(fragment)}\n"
    assert extract_candidate_code(reply, Target.TRITON).code == MODULE


def test_python_block_is_preferred_over_other_languages() -> None:
    mislabeled = MODULE.replace("BLOCK=1024", "BLOCK=512")
    reply = f"{_fenced(MODULE)}\n{_fenced(mislabeled, 'text')}\n"
    assert extract_candidate_code(reply, Target.TRITON).code == MODULE
    only_text = extract_candidate_code(_fenced(MODULE, "text"), Target.TRITON)
    assert only_text.code == MODULE


def test_bare_module_without_fences() -> None:
    extraction = extract_candidate_code(MODULE, Target.TRITON)
    assert extraction.code == MODULE
    assert extraction.blocks == 0
    assert extraction.ok


def test_bare_module_with_prose_around_it() -> None:
    reply = f"Sure! Here is the solution.\n\n{MODULE}\nThis launches one program per block of 1024 elements."
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE
    assert extraction.ok


def test_bare_module_that_does_not_parse_is_returned_with_a_syntax_error() -> None:
    broken = MODULE.replace("def forward(self, x):", "def forward(self, x)")
    extraction = extract_candidate_code("Here you go:\n" + broken, Target.TRITON)
    assert extraction.code is not None and extraction.code.startswith("import torch")
    assert _codes(extraction) == ["python.syntax"]


@pytest.mark.parametrize("target", list(Target))
def test_truncated_reply_is_incomplete(target: Target) -> None:
    extraction = extract_candidate_code(_fenced(MODULE), target, truncated=True)
    assert extraction.code is None
    (diagnostic,) = extraction.diagnostics
    assert diagnostic.code == "extract.incomplete_reply"
    assert diagnostic.is_error
    assert (
        diagnostic.hint is not None and "complete module" in diagnostic.hint and "shorter" in diagnostic.hint
    )


def test_unclosed_fence_is_incomplete() -> None:
    reply = "Plan first.\n```python\n" + MODULE[: len(MODULE) // 2]
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code is None
    assert _codes(extraction) == ["extract.incomplete_reply"]
    assert "unclosed" in extraction.diagnostics[0].message


def test_a_stray_empty_fence_at_the_end_is_ignored() -> None:
    reply = f"{_fenced(MODULE)}\nThat's all.\n```\n"
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE
    assert extraction.ok


@pytest.mark.parametrize(
    "reply",
    [
        "I am not able to write this kernel.",
        "Use a grid-stride loop and shared memory tiles of 32x32.",
        _fenced("def helper(x):\n    return x * 2"),
        _fenced(PTX_TEXT, "ptx"),
    ],
)
def test_no_model_new(reply: str) -> None:
    extraction = extract_candidate_code(reply, Target.PTX)
    assert extraction.code is None
    assert _codes(extraction) == ["extract.no_model_new"]
    assert extraction.diagnostics[0].hint is not None
    assert "class ModelNew" in extraction.diagnostics[0].hint


def test_no_model_new_counts_blocks() -> None:
    extraction = extract_candidate_code(f"{_fenced('x = 1')}\n{_fenced('y = 2')}", Target.CUDA)
    assert extraction.blocks == 2
    assert "2 code block" in extraction.diagnostics[0].message


@pytest.mark.parametrize("reply", ["", "   \n\t\n", "\x00\x01\x02\x03\x04\x05garbage\x06\x07", "\ufffd" * 50])
def test_garbage_is_no_code(reply: str) -> None:
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code is None
    assert _codes(extraction) == ["extract.no_code"]


def test_non_string_input_does_not_raise() -> None:
    for value in (None, b"\x00\xff\xfe", 42, b"class ModelNew:\n    pass\n"):
        extraction = extract_candidate_code(cast(str, value), Target.TRITON)
        assert isinstance(extraction, Extraction)
    assert extract_candidate_code(cast(str, b"class ModelNew:\n    pass\n"), Target.TRITON).code is not None


def test_syntax_error_keeps_the_code_and_locates_the_error() -> None:
    broken = MODULE.replace("    def forward(self, x):", "    def forward(self, x:")
    reply = f"Some reasoning.\nMore reasoning.\n\n{_fenced(broken)}\n"
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == broken
    (diagnostic,) = extraction.diagnostics
    assert diagnostic.code == "python.syntax"
    assert diagnostic.severity == Severity.ERROR
    assert diagnostic.file == MODULE_FILE
    expected_line = broken.splitlines().index("    def forward(self, x:") + 1
    assert diagnostic.line is not None and expected_line <= diagnostic.line <= expected_line + 1
    assert diagnostic.column is not None
    assert not extraction.ok


def test_null_bytes_in_code_give_a_syntax_diagnostic() -> None:
    code = MODULE.replace("import torch\n", "import torch\x00\n", 1)
    extraction = extract_candidate_code(_fenced(code), Target.TRITON)
    assert extraction.code is not None
    assert _codes(extraction) == ["python.syntax"]


def test_separate_ptx_block_is_injected() -> None:
    reply = f"The PTX:\n{_fenced(PTX_TEXT, 'ptx')}\nThe module:\n{_fenced(PTX_MODULE)}\n"
    extraction = extract_candidate_code(reply, Target.PTX)
    assert extraction.code is not None
    assert extraction.code.startswith('PTX = r""".version 7.8\n')
    assert _codes(extraction) == ["extract.injected_kernel_source"]
    assert extraction.diagnostics[0].severity == Severity.INFO
    assert extraction.ok
    namespace: dict[str, object] = {}
    tree = ast.parse(extraction.code)
    first = tree.body[0]
    assert isinstance(first, ast.Assign)
    exec(compile(ast.Module(body=[first], type_ignores=[]), "<test>", "exec"), namespace)
    assert namespace["PTX"] == PTX_TEXT + "\n"


def test_untagged_ptx_block_is_recognised() -> None:
    reply = f"{_fenced(PTX_TEXT, '')}\n{_fenced(PTX_MODULE)}\n"
    extraction = extract_candidate_code(reply, Target.PTX)
    assert extraction.code is not None and "PTX = " in extraction.code


def test_cuda_block_is_injected_after_docstring_and_future_import() -> None:
    module = '"""Doc."""\nfrom __future__ import annotations\n' + PTX_MODULE.replace(
        "load_ptx", "load_cuda"
    ).replace("PTX", "KERNEL_SRC")
    cuda = 'extern "C" __global__ void relu_f32(const float* x, float* y, int n) { }'
    extraction = extract_candidate_code(f"{_fenced(cuda, 'cuda')}\n{_fenced(module)}", Target.CUDA)
    assert extraction.code is not None
    lines = extraction.code.splitlines()
    assert lines[0] == '"""Doc."""'
    assert lines[1] == "from __future__ import annotations"
    assert lines[2].startswith('KERNEL_SRC = r"""extern "C"')
    assert extraction.ok


def test_kernel_text_with_triple_quotes_still_round_trips() -> None:
    cuda = 'extern "C" __global__ void f() { /* """ */ }'
    module = PTX_MODULE.replace("load_ptx", "load_cuda").replace("PTX", "SRC")
    extraction = extract_candidate_code(f"{_fenced(cuda, 'cpp')}\n{_fenced(module)}", Target.CUDA)
    assert extraction.code is not None and extraction.ok
    assign = ast.parse(extraction.code).body[0]
    assert isinstance(assign, ast.Assign)
    assert ast.literal_eval(assign.value) == cuda + "\n"


def test_no_injection_when_not_needed() -> None:
    defined = f'PTX = r"""{PTX_TEXT}"""\n' + PTX_MODULE
    reply = f"{_fenced(PTX_TEXT, 'ptx')}\n{_fenced(defined)}"
    extraction = extract_candidate_code(reply, Target.PTX)
    assert extraction.code == defined
    assert extraction.diagnostics == ()
    # Triton modules never get kernel blocks injected
    triton = extract_candidate_code(f"{_fenced(PTX_TEXT, 'ptx')}\n{_fenced(PTX_MODULE)}", Target.TRITON)
    assert triton.code == PTX_MODULE
    # without a kernel block there is nothing to inject
    alone = extract_candidate_code(_fenced(PTX_MODULE), Target.PTX)
    assert alone.code == PTX_MODULE and alone.diagnostics == ()


def test_no_injection_when_the_missing_name_is_ambiguous() -> None:
    module = PTX_MODULE.replace("load_ptx(PTX)", "load_ptx(PTX_A + PTX_B)")
    extraction = extract_candidate_code(f"{_fenced(PTX_TEXT, 'ptx')}\n{_fenced(module)}", Target.PTX)
    assert extraction.code == module
    assert extraction.diagnostics == ()


def _fuzz_alphabet() -> list[str]:
    return [
        "```",
        "```python\n",
        "~~~",
        "\n",
        " ",
        "class ModelNew",
        "(torch.nn.Module):\n",
        "    pass\n",
        "import torch\n",
        "def f(",
        ")",
        '"""',
        "\x00",
        "\ufffd",
        "é",
        "\t",
        "```ptx\n",
        ".version 7.8\n",
        "PTX",
        "load_ptx(PTX)",
        "\r\n",
        "#",
        "`",
        "~",
        "{",
        "}",
        "\\",
        "'",
    ]


def test_fuzz_random_replies_never_raise() -> None:
    rng = random.Random(1234)
    alphabet = _fuzz_alphabet()
    for _ in range(600):
        reply = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        target = rng.choice(list(Target))
        extraction = extract_candidate_code(reply, target, truncated=rng.random() < 0.1)
        assert isinstance(extraction, Extraction)
        assert extraction.code is None or isinstance(extraction.code, str)
        assert all(d.source == "extract" for d in extraction.diagnostics)


def test_fuzz_random_bytes_and_cut_replies_never_raise() -> None:
    rng = random.Random(99)
    full = f"Reasoning.\n{_fenced(PTX_TEXT, 'ptx')}\n{_fenced(PTX_MODULE)}\nDone."
    for _ in range(300):
        cut = full[: rng.randint(0, len(full))]
        extract_candidate_code(cut, Target.PTX)
        noise = "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 200)))
        extract_candidate_code(noise, rng.choice(list(Target)))


def test_reasoning_sections_are_ignored() -> None:
    draft = "```python\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n"  # unclosed draft
    thinking = f"<think>\nLet me sketch it.\n{draft}\nHmm, better use masks.\n</think>"
    reply = f"{thinking}\n\nFinal:\n{_fenced(MODULE)}\n"
    extraction = extract_candidate_code(reply, Target.TRITON)
    assert extraction.code == MODULE
    assert extraction.ok
    only_thinking = extract_candidate_code(f"<think>{_fenced(MODULE)}</think>", Target.TRITON)
    assert only_thinking.code == MODULE
