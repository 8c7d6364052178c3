"""Static extraction of PTX/CUDA sources from candidate modules, and the line mapping back to Python."""

from __future__ import annotations

import pytest

from kernelwright.domain import Severity, Target
from sandbox.kernel_source import KernelScan, find_kernel_sources

RELU_CANDIDATE = '''import torch
from sandbox.runtime import load_ptx

PTX = r"""
.version 8.0
.target sm_90
.address_size 64
.visible .entry relu(.param .u64 x, .param .u64 y, .param .u32 n)
{
    ret;
}
"""


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_ptx(PTX).get_function("relu")
'''


def codes(scan: KernelScan) -> list[str]:
    return [d.code for d in scan.diagnostics]


def line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), start=1) if text in line)


def test_name_bound_at_module_level() -> None:
    scan = find_kernel_sources(RELU_CANDIDATE, Target.PTX)
    assert scan.ok and scan.diagnostics == []
    (source,) = scan.sources
    assert source.kind == "ptx" and source.name == "PTX"
    assert source.text.startswith("\n.version 8.0\n")
    assert source.call_line == line_of(RELU_CANDIDATE, "load_ptx(PTX)")
    # The string begins with a newline: kernel line 1 is the rest of `PTX = r"""`, line 2 is .version.
    assert source.start_line == line_of(RELU_CANDIDATE, 'PTX = r"""')
    assert source.python_line(2) == line_of(RELU_CANDIDATE, ".version 8.0")
    assert source.python_line(5) == line_of(RELU_CANDIDATE, ".visible .entry")
    assert source.python_column(5, 2) == 2
    assert source.python_line(999) == source.line_map[-1]


def test_unpacks_as_a_pair() -> None:
    sources, diagnostics = find_kernel_sources(RELU_CANDIDATE, "ptx")
    assert len(sources) == 1 and diagnostics == []


def test_literal_argument_starting_on_the_call_line() -> None:
    module = (
        "from sandbox.runtime import load_ptx\n"
        "class ModelNew:\n"
        "    def __init__(self):\n"
        '        self.k = load_ptx(""".version 8.0\n'
        ".target sm_90\n"
        '.entry relu() { ret; }""").get_function("relu")\n'
    )
    (source,) = find_kernel_sources(module, Target.PTX).sources
    assert source.name is None
    assert source.python_line(1) == 4
    assert source.python_line(3) == 6
    # Kernel line 1 starts after `        self.k = load_ptx("""`: columns are shifted on that line only.
    assert source.python_column(1, 1) == len('        self.k = load_ptx("""') + 1
    assert source.python_column(2, 1) == 1


def test_attribute_call_keyword_source_and_alias() -> None:
    module = (
        "import sandbox.runtime as rt\n"
        "from sandbox.runtime import load_cuda as compile_it\n"
        "A = 'extern \"C\" __global__ void a() {}'\n"
        "B = 'extern \"C\" __global__ void b() {}'\n"
        "x = rt.load_cuda(source=A)\n"
        "y = compile_it(B)\n"
    )
    scan = find_kernel_sources(module, Target.CUDA)
    assert scan.ok, scan.diagnostics
    assert [s.name for s in scan.sources] == ["A", "B"]


def test_implicit_and_plus_concatenation_map_each_piece() -> None:
    module = (
        "from sandbox.runtime import load_ptx\n"
        "HEADER = (\n"
        '    ".version 8.0\\n"\n'
        '    ".target sm_90\\n"\n'
        ")\n"
        'BODY = ".entry relu()\\n" + "{ ret; }\\n"\n'
        "PTX = HEADER + BODY\n"
        "k = load_ptx(PTX)\n"
    )
    (source,) = find_kernel_sources(module, Target.PTX).sources
    assert source.text == ".version 8.0\n.target sm_90\n.entry relu()\n{ ret; }\n"
    assert [source.python_line(n) for n in (1, 2, 3, 4)] == [3, 4, 6, 6]
    assert source.python_column(1, 1) == 6  # after `    "`
    assert source.python_column(4, 1) == len('BODY = ".entry relu()\\n" + "') + 1


def test_dedent_and_strip_keep_positions() -> None:
    module = (
        "import textwrap\n"
        "from sandbox.runtime import load_ptx\n"
        'PTX = textwrap.dedent("""\n'
        "    .version 8.0\n"
        "    .target sm_90\n"
        '""").strip()\n'
        "k = load_ptx(PTX)\n"
    )
    (source,) = find_kernel_sources(module, Target.PTX).sources
    assert source.text == ".version 8.0\n.target sm_90"
    assert source.python_line(1) == 4 and source.python_line(2) == 5
    assert source.python_column(2, 1) == 5


def test_escapes_in_a_plain_string() -> None:
    module = (
        "from sandbox.runtime import load_ptx\n"
        'PTX = ".version 8.0\\n\\t.target sm_90\\n\\x2e"\n'
        "k = load_ptx(PTX)\n"
    )
    (source,) = find_kernel_sources(module, Target.PTX).sources
    assert source.text == ".version 8.0\n\t.target sm_90\n."
    assert [source.python_line(n) for n in (1, 2, 3)] == [2, 2, 2]


def test_f_string_is_an_error() -> None:
    module = (
        "from sandbox.runtime import load_ptx\n"
        "N = 256\n"
        'PTX = f""".version 8.0\n.maxntid {N}"""\n'
        "k = load_ptx(PTX)\n"
    )
    scan = find_kernel_sources(module, Target.PTX)
    assert not scan.ok and scan.sources == []
    (diagnostic,) = scan.diagnostics
    assert diagnostic.code == "check.dynamic_kernel_source"
    assert "f-string" in diagnostic.message and diagnostic.line == 3
    assert diagnostic.hint and "module-level string constant" in diagnostic.hint


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("make_ptx()", "function call"),
        ("'{}'.format(3)", "str.format"),
        ("'%d' % 3", "%-formatting"),
        ("b'.version 8.0'", "bytes constant"),
        ("UNDEFINED", "not bound to a string at module level"),
    ],
)
def test_run_time_sources_are_errors(expression: str, reason: str) -> None:
    module = f"from sandbox.runtime import load_ptx\nk = load_ptx({expression})\n"
    scan = find_kernel_sources(module, Target.PTX)
    assert codes(scan) == ["check.dynamic_kernel_source"]
    assert reason in scan.diagnostics[0].message


def test_name_bound_inside_a_function_is_not_module_level() -> None:
    module = (
        "from sandbox.runtime import load_ptx\n"
        "class ModelNew:\n"
        "    def __init__(self):\n"
        "        src = '.version 8.0'\n"
        "        self.k = load_ptx(src)\n"
    )
    assert codes(find_kernel_sources(module, Target.PTX)) == ["check.dynamic_kernel_source"]


def test_none_found() -> None:
    scan = find_kernel_sources("import torch\nclass ModelNew(torch.nn.Module):\n    pass\n", Target.PTX)
    (diagnostic,) = scan.diagnostics
    assert diagnostic.code == "check.no_kernel_source" and diagnostic.is_error
    assert "load_ptx" in diagnostic.message
    assert diagnostic.hint and "get_function" in diagnostic.hint


def test_wrong_kind_for_target() -> None:
    module = "from sandbox.runtime import load_cuda\nk = load_cuda('extern \"C\" __global__ void k() {}')\n"
    assert "check.wrong_kernel_kind" in codes(find_kernel_sources(module, Target.PTX))


def test_other_targets_are_not_scanned() -> None:
    assert find_kernel_sources("x = 1\n", Target.TRITON) == ([], [])


def test_syntax_error() -> None:
    scan = find_kernel_sources("def broken(:\n", Target.PTX)
    assert codes(scan) == ["python.syntax"] and scan.diagnostics[0].line == 1


def test_empty_source() -> None:
    assert codes(
        find_kernel_sources("from sandbox.runtime import load_ptx\nk = load_ptx('  ')\n", "ptx")
    ) == ["check.empty_kernel_source"]


def test_duplicates_are_compiled_once() -> None:
    module = RELU_CANDIDATE + "\nagain = load_ptx(PTX)\n"
    assert len(find_kernel_sources(module, Target.PTX).sources) == 1


def test_cuda_options_and_name_checks() -> None:
    module = (
        "from sandbox.runtime import load_cuda\n"
        "SRC = '__global__ void add(float* x) {}'\n"
        "FLAGS = ('-use_fast_math',)\n"
        "k = load_cuda(SRC, options=FLAGS).get_function('add')\n"
        "j = load_cuda(SRC, options=make_flags()).get_function('sub')\n"
    )
    scan = find_kernel_sources(module, Target.CUDA)
    assert scan.ok  # only warnings
    assert [s.options for s in scan.sources] == [("-use_fast_math",), None]
    assert sorted(codes(scan)) == [
        "check.cuda_not_extern_c",
        "check.dynamic_compile_options",
        "check.unknown_kernel_name",
    ]
    assert all(d.severity == Severity.WARNING for d in scan.diagnostics)
    unknown = next(d for d in scan.diagnostics if d.code == "check.unknown_kernel_name")
    assert "'sub'" in unknown.message and unknown.line == 5


def test_ptx_entry_names_are_checked() -> None:
    module = RELU_CANDIDATE.replace('get_function("relu")', 'get_function("reLU")')
    scan = find_kernel_sources(module, Target.PTX)
    assert codes(scan) == ["check.unknown_kernel_name"]
    assert "found: relu" in scan.diagnostics[0].message


def test_launch_bounds_do_not_hide_the_kernel_name() -> None:
    module = (
        "from sandbox.runtime import load_cuda\n"
        "SRC = 'extern \"C\" __global__ void __launch_bounds__(256, 2) add(float* x) {}'\n"
        "k = load_cuda(SRC).get_function('add')\n"
    )
    assert find_kernel_sources(module, Target.CUDA).diagnostics == []


def test_columns_count_characters_not_utf8_bytes() -> None:
    prefix = 'é = 1; k = load_ptx("""'
    module = "from sandbox.runtime import load_ptx\n" + prefix + '.version 8.0""")\n'
    (source,) = find_kernel_sources(module, Target.PTX).sources
    assert source.python_column(1, 1) == len(prefix) + 1
