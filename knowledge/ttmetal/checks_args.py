"""Host <-> kernel agreement: kernel files and kinds, compile-time argument indices (TensorAccessorArgs
take two slots each for interleaved buffers), named compile-time arguments, runtime argument counts.
"""

from __future__ import annotations

import re

from kernelwright.domain import Diagnostic
from knowledge.ttmetal._diag import error, warning
from knowledge.ttmetal.model import TENSOR_ACCESSOR_SLOTS, KernelModel, ProjectModel
from knowledge.ttmetal.project import FileRole

__all__ = ["check_arguments", "check_kernel_setup"]

_CT_ARG = re.compile(r"get_compile_time_arg_val\s*\(\s*([^()]+?)\s*\)")
_NAMED = re.compile(r'get_named_compile_time_arg_val\s*\(\s*"([^"]+)"\s*\)')
_ACCESSOR = re.compile(
    r"(?:constexpr\s+)?auto\s+(\w+)\s*=\s*TensorAccessorArgs\s*<\s*([^<>]*(?:<[^<>]*>[^<>]*)?)\s*>\s*\("
)
_RT_ARG = re.compile(r"get_arg_val\s*<[^>]*>\s*\(\s*([^()]+?)\s*\)")


def check_kernel_setup(model: ProjectModel) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for setup in model.host.kernels:
        if setup.file is None:
            found.append(
                error(
                    "ttm.kernel.missing_file",
                    setup.host_file,
                    setup.line,
                    f'CreateKernel names "{setup.path}", which is not in the project',
                    "put the kernel under kernels/dataflow/ or kernels/compute/ and use that path",
                )
            )
            continue
        role = FileRole.COMPUTE if "/compute/" in f"/{setup.file}" else FileRole.DATAFLOW
        if (setup.kind == "compute" and role != FileRole.COMPUTE) or (
            setup.kind == "dataflow" and role != FileRole.DATAFLOW
        ):
            found.append(
                error(
                    "ttm.kernel.config_mismatch",
                    setup.host_file,
                    setup.line,
                    f"{setup.file} is created with a {_config_name(setup.kind)} but is a {role.value} kernel",
                    "data-movement kernels take DataMovementConfig{...}; compute kernels ComputeConfig{...}",
                )
            )
    movers = [k for k in model.host.kernels if k.kind == "dataflow" and k.processor]
    seen: dict[str, str] = {}
    for setup in movers:
        assert setup.processor is not None
        other = seen.get(setup.processor)
        if other is not None and other != setup.file:
            found.append(
                error(
                    "ttm.kernel.same_processor",
                    setup.host_file,
                    setup.line,
                    f"{setup.file} and {other} both run on {setup.processor} of the same cores",
                    "put the reader on DataMovementProcessor::RISCV_1 (NOC::RISCV_1_default) and the writer "
                    "on RISCV_0 (NOC::RISCV_0_default), or the reverse: one kernel per RISC-V",
                )
            )
        seen[setup.processor] = setup.file or ""
    created = {k.file for k in model.host.kernels}
    if model.project.host_files:
        for kernel in model.kernels:
            if kernel.path not in created:
                found.append(
                    warning(
                        "ttm.kernel.not_created",
                        kernel.path,
                        None,
                        "no CreateKernel call uses this kernel",
                        "create it on the host, or delete the file",
                    )
                )
    return found


def _config_name(kind: str) -> str:
    return "ComputeConfig" if kind == "compute" else "DataMovementConfig"


def check_arguments(model: ProjectModel) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for kernel in model.kernels:
        if kernel.setup is None:
            continue
        found += _compile_time(kernel)
        found += _runtime(kernel)
    return found


def _compile_time(kernel: KernelModel) -> list[Diagnostic]:
    setup = kernel.setup
    assert setup is not None
    found: list[Diagnostic] = []
    code = kernel.source.code
    slots = setup.compile_args
    if slots is not None:
        count = len(slots)
        for match in _CT_ARG.finditer(code):
            index = kernel.source.int_value(match.group(1))
            if index is not None and index >= count:
                found.append(_ct_range(kernel, kernel.source.line_of(match.start()), index, count))
        offsets: dict[str, int] = {}
        for match in _ACCESSOR.finditer(code):
            name, text = match.group(1), match.group(2)
            chained = re.fullmatch(r"\s*(\w+)\s*\.\s*next_compile_time_args_offset\s*\(\s*\)\s*", text)
            first_arg = text.split(",")[0]
            if chained:
                base = offsets.get(chained.group(1))
                offset = None if base is None else base + TENSOR_ACCESSOR_SLOTS
            else:
                offset = kernel.source.int_value(first_arg)
            if offset is None:
                continue
            offsets[name] = offset
            if offset + TENSOR_ACCESSOR_SLOTS > count:
                found.append(_ct_range(kernel, kernel.source.line_of(match.start()), offset + 1, count))
    named = setup.named_args or set()
    for match in _NAMED.finditer(code):
        if match.group(1) not in named:
            found.append(
                error(
                    "ttm.args.named_missing",
                    kernel.path,
                    kernel.source.line_of(match.start()),
                    f'the kernel reads named compile-time argument "{match.group(1)}", which the host does '
                    f"not pass ({setup.host_file}:{setup.line} passes {sorted(named) or 'none'})",
                    f'add {{"{match.group(1)}", value}} to .named_compile_args of this kernel\'s config',
                )
            )
    return found


def _ct_range(kernel: KernelModel, line: int, index: int, count: int) -> Diagnostic:
    setup = kernel.setup
    assert setup is not None
    return error(
        "ttm.args.ct_out_of_range",
        kernel.path,
        line,
        f"compile-time argument {index} is read, but the host passes {count} "
        f"({setup.host_file}:{setup.line}; each TensorAccessorArgs(buffer).append_to(args) adds "
        f"{TENSOR_ACCESSOR_SLOTS})",
        "make the kernel's indices match the order the host appends compile-time args, or chain "
        "TensorAccessorArgs<prev.next_compile_time_args_offset()>()",
    )


def _runtime(kernel: KernelModel) -> list[Diagnostic]:
    setup = kernel.setup
    assert setup is not None
    reads = [
        (kernel.source.int_value(m.group(1)), kernel.source.line_of(m.start()))
        for m in _RT_ARG.finditer(kernel.source.code)
    ]
    if not reads or setup.handle is None:
        return []
    calls = kernel.host.runtime_args.get(setup.handle)
    if not calls:
        line = reads[0][1]
        return [
            error(
                "ttm.args.rt_not_set",
                kernel.path,
                line,
                f"the kernel reads runtime arguments, but the host never calls SetRuntimeArgs for "
                f"`{setup.handle}`",
                f"call SetRuntimeArgs(program, {setup.handle}, core, {{...}}) for every core it runs on",
            )
        ]
    known = [values for values, _, _ in calls if values is not None]
    if not known:
        return []
    count = min(len(v) for v in known)
    found: list[Diagnostic] = []
    for index, line in reads:
        if index is not None and index >= count:
            _, call, host_file = calls[0]
            found.append(
                error(
                    "ttm.args.rt_out_of_range",
                    kernel.path,
                    line,
                    f"runtime argument {index} is read, but the host passes {count} "
                    f"({host_file}:{call.line}): the kernel reads garbage",
                    "pass every argument the kernel reads, in the order it reads them",
                )
            )
    return found
