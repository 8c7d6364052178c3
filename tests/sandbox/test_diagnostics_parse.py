"""Parsing real ptxas / nvcc output (captured from CUDA 13.0) into located diagnostics."""

from __future__ import annotations

from kernelwright.domain import Severity
from sandbox.diagnostics_parse import hint_for, parse_nvcc_output, parse_ptxas_output
from sandbox.kernel_source import find_kernel_sources

PTXAS_ERRORS = """\
ptxas bad.ptx, line 31; error   : Not a name of any known instruction: 'maxx'
ptxas bad.ptx, line 32; error   : Arguments mismatch for instruction 'add'
ptxas bad.ptx, line 32; error   : Unknown symbol '%f9'
ptxas fatal   : Ptx assembly aborted due to errors
"""
PTXAS_TARGET = """\
ptxas newer.ptx, line 32; error   : Feature 'redux' requires .target sm_80 or higher
ptxas fatal   : Ptx assembly aborted due to errors
"""
PTXAS_FATAL_ONLY = "ptxas fatal   : PTX with .target 'sm_90a' cannot be compiled for architecture 'sm_90'\n"
PTXAS_VERSION = (
    "ptxas v.ptx, line 1; fatal   : Unsupported .version 9.9; current version is '9.0'\n"
    "ptxas fatal   : Ptx assembly aborted due to errors\n"
)
PTXAS_INFO = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'relu' for 'sm_90'
ptxas info    : Function properties for relu
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 0 barriers
ptxas warning : For entry k adjusting per thread register count of 16 to lower bound of 24
"""
PTXAS_SMEM = "ptxas error   : Entry function 'k' uses too much shared data (0x493e0 bytes, 0xc000 max)\n"

NVCC_ERRORS = """\
bad.cu(4): error: identifier "bb" is undefined
      if (i < n) c[i] = a[i] + bb[i]
                               ^

bad.cu(5): error: expected a ";"
  }
  ^

bad.cu(3): warning #177-D: variable "unused" was declared but never referenced
      int unused = 3;
          ^

Remark: The warnings can be suppressed with "-diag-suppress <warning-number>"

2 errors detected in the compilation of "bad.cu".
"""
NVCC_MULTILINE = """\
ov2.cu(4): error: no instance of overloaded function "foo" matches the argument list
            argument types are: (float *)
      x[0] = foo(x);
             ^
ov2.cu(2): note #3326-D: function "foo(double)" does not match because argument #1 does not match parameter
  __attribute__((device)) float foo(double a) { return a; }
                                ^
ov2.cu(1): note #3326-D: function "foo(float)" does not match because argument #1 does not match parameter
  __attribute__((device)) float foo(float a) { return a; }
                                ^

1 error detected in the compilation of "ov2.cu".
"""
NVCC_INCLUDE = """\
inc.cu:1:10: fatal error: nothere.h: No such file or directory
    1 | #include <nothere.h>
      |          ^~~~~~~~~~~
compilation terminated.
"""
NVCC_INLINE_ASM = """\
ptxas /tmp/tmpxft_00001093_00000000-6_asm.ptx, line 27; error   : Not a name of any known instruction: 'maxx'
ptxas fatal   : Ptx assembly aborted due to errors
"""
NVCC_FATAL = "nvcc fatal   : Unknown option '-Wall'\n"

CUDA_CANDIDATE = '''from sandbox.runtime import load_cuda

SRC = r"""extern "C" __global__ void vadd(const float* a, const float* b, float* c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int unused = 3;
    if (i < n) c[i] = a[i] + bb[i]
}
"""
k = load_cuda(SRC).get_function("vadd")
'''


def test_ptxas_errors_unmapped() -> None:
    found = parse_ptxas_output(PTXAS_ERRORS)
    assert [(d.code, d.line, d.file) for d in found] == [
        ("ptxas.error", 31, "bad.ptx"),
        ("ptxas.error", 32, "bad.ptx"),
        ("ptxas.error", 32, "bad.ptx"),
    ]  # the closing "aborted due to errors" is dropped
    assert found[0].message == "Not a name of any known instruction: 'maxx'"
    assert found[0].source == "ptxas"
    assert found[1].hint and ".f32" in found[1].hint
    assert found[2].hint and "declare" in found[2].hint


def test_ptxas_errors_mapped_to_python_lines() -> None:
    module = "from sandbox.runtime import load_ptx\n\nPTX = r'''\n" + "x\n" * 40 + "'''\nk = load_ptx(PTX)\n"
    (source,) = find_kernel_sources(module, "ptx").sources
    found = parse_ptxas_output(PTXAS_ERRORS, source=source, ptx_file="/tmp/x/bad.ptx", filename="cand.py")
    # Kernel line 1 is on Python line 3 (the string starts right after `PTX = r'''`).
    assert [d.line for d in found] == [33, 34, 34]
    assert {d.file for d in found} == {"cand.py"}
    assert found[0].message.endswith("(PTX string PTX, line 31)")


def test_other_files_are_not_mapped() -> None:
    module = "from sandbox.runtime import load_ptx\nPTX = '.version 8.0'\nk = load_ptx(PTX)\n"
    (source,) = find_kernel_sources(module, "ptx").sources
    (first, *_) = parse_ptxas_output(PTXAS_ERRORS, source=source, ptx_file="other.ptx")
    assert (first.file, first.line) == ("bad.ptx", 31)


def test_target_and_version_hints() -> None:
    (redux,) = parse_ptxas_output(PTXAS_TARGET)
    assert "requires .target sm_80" in redux.message and redux.hint and ".target" in redux.hint
    (fatal,) = parse_ptxas_output(PTXAS_FATAL_ONLY)
    assert fatal.is_error and fatal.line is None and fatal.hint and ".target" in fatal.hint
    (version,) = parse_ptxas_output(PTXAS_VERSION)
    assert version.line == 1 and version.hint and "lower `.version`" in version.hint


def test_info_is_not_a_diagnostic_but_warnings_are() -> None:
    (warning,) = parse_ptxas_output(PTXAS_INFO)
    assert warning.code == "ptxas.warning" and warning.severity == Severity.WARNING
    (smem,) = parse_ptxas_output(PTXAS_SMEM)
    assert smem.hint and "48 KiB" in smem.hint


def test_nvcc_errors_with_columns() -> None:
    found = parse_nvcc_output(NVCC_ERRORS)
    assert [(d.code, d.file, d.line, d.column) for d in found] == [
        ("nvcc.error", "bad.cu", 4, 30),
        ("nvcc.error", "bad.cu", 5, 1),
        ("nvcc.warning", "bad.cu", 3, 9),
    ]
    assert found[0].message == 'identifier "bb" is undefined'
    assert found[2].message == 'variable "unused" was declared but never referenced [#177-D]'
    assert found[0].hint and "declare" in found[0].hint


def test_nvcc_errors_mapped_to_python() -> None:
    (source,) = find_kernel_sources(CUDA_CANDIDATE, "cuda").sources
    found = parse_nvcc_output(NVCC_ERRORS, source=source, cu_file="bad.cu")
    lines = CUDA_CANDIDATE.splitlines()
    assert found[0].file == "candidate.py"
    assert "bb[i]" in lines[found[0].line - 1]  # type: ignore[operator]
    assert lines[found[0].line - 1][found[0].column - 1 :].startswith("bb[i]")  # type: ignore[operator]
    assert found[0].message.endswith("(CUDA source SRC, line 4)")
    assert "int unused" in lines[found[2].line - 1]  # type: ignore[operator]


def test_nvcc_multiline_message() -> None:
    error, *notes = parse_nvcc_output(NVCC_MULTILINE)
    assert error.message == (
        'no instance of overloaded function "foo" matches the argument list argument types are: (float *)'
    )
    assert (error.line, error.column) == (4, 12)
    assert [(n.code, n.severity, n.line) for n in notes] == [
        ("nvcc.note", Severity.INFO, 2),
        ("nvcc.note", Severity.INFO, 1),
    ]


def test_host_preprocessor_errors() -> None:
    (found,) = parse_nvcc_output(NVCC_INCLUDE)
    assert (found.code, found.file, found.line, found.column) == ("nvcc.error", "inc.cu", 1, 10)
    assert "nothere.h" in found.message and found.hint


def test_inline_asm_errors_point_at_generated_ptx() -> None:
    (source,) = find_kernel_sources(CUDA_CANDIDATE, "cuda").sources
    (found,) = parse_nvcc_output(NVCC_INLINE_ASM, source=source, cu_file="kernel.cu")
    assert found.code == "ptxas.error" and found.line is None
    assert "maxx" in found.message and "inline asm" in found.message


def test_nvcc_fatal() -> None:
    (found,) = parse_nvcc_output(NVCC_FATAL)
    assert (found.code, found.message) == ("nvcc.error", "Unknown option '-Wall'")


def test_noise_is_ignored() -> None:
    assert parse_nvcc_output("compilation terminated.\n\n1 error detected\n") == []
    assert parse_ptxas_output("") == []
    assert hint_for("something nobody has seen") is None
