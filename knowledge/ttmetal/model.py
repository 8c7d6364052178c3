"""What the host program sets up and what each kernel does, read from the sources (see `source.py`).

The host model lists circular buffers (index, capacity in pages), kernels (file, kind, processor,
compile-time and named arguments) and runtime arguments per kernel. The kernel model lists circular
buffer operations with their page counts and loop trip counts, argument reads and includes. Symbols
that a kernel reads from runtime arguments are renamed to the host expression passed in that slot,
so `n_tiles` in the reader and `num_tiles` in the writer compare equal when the host passed both
the same variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from knowledge.ttmetal.project import FileRole, Project, role_of
from knowledge.ttmetal.source import (
    Call,
    SourceFile,
    cb_index_value,
    evaluate_int,
    normalise,
    split_top_level,
)

__all__ = ["CbConfig", "CbOp", "HostModel", "KernelModel", "KernelSetup", "ProjectModel"]

TENSOR_ACCESSOR_SLOTS = 2  # interleaved TensorAccessorArgs: config word + aligned page size
_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_CB_OPS = ("cb_reserve_back", "cb_push_back", "cb_wait_front", "cb_pop_front")


@dataclass(frozen=True)
class CbConfig:
    """A circular buffer the host creates: its index, capacity in pages (None when not constant)."""

    index: int | None
    pages: int | None
    line: int
    file: str


@dataclass(frozen=True)
class KernelSetup:
    """One `CreateKernel` call."""

    handle: str | None
    path: str
    file: str | None  # the project file it names, None when missing
    kind: str  # "dataflow" | "compute" | "unknown"
    processor: str | None
    compile_args: list[str] | None  # slot texts; None when the host builds them in a way we cannot follow
    named_args: set[str] | None
    line: int
    host_file: str


@dataclass(frozen=True)
class CbOp:
    """`cb_reserve_back(cb, n)` and friends, with the total pages over the enclosing loops."""

    op: str
    cb: int | None
    pages: int | None
    total: tuple[int, tuple[str, ...]] | None  # coefficient x product of symbols
    line: int
    call: Call


@dataclass
class HostModel:
    cbs: list[CbConfig] = field(default_factory=list)
    cbs_dynamic: bool = False  # some CB index could not be resolved: "not configured" checks stay quiet
    kernels: list[KernelSetup] = field(default_factory=list)
    runtime_args: dict[str, list[tuple[list[str] | None, Call, str]]] = field(default_factory=dict)
    common_args: dict[str, list[str] | None] = field(default_factory=dict)

    @classmethod
    def read(cls, project: Project) -> HostModel:
        model = cls()
        for host in project.host_files:
            model._read_file(project, host)
        return model

    def _read_file(self, project: Project, host: SourceFile) -> None:
        env = host.assignments
        for call in host.calls_named("CircularBufferConfig"):
            if len(call.args) < 2:
                continue
            indices = re.findall(r"\{\s*([^{},]+?)\s*,\s*[^{}]+\}", call.args[1])
            tail = host.code[call.end : host.code.find(";", call.end)]
            page = re.search(r"set_page_size\s*\(\s*[^,]+,\s*([^)]+)\)", tail)
            pages = _pages(call.args[0], page.group(1) if page else None, env)
            for text in indices or [call.args[1]]:
                index = evaluate_int(text, env)
                self.cbs_dynamic |= index is None
                self.cbs.append(CbConfig(index, pages, call.line, host.path))
        for call in host.calls_named("CreateKernel"):
            self.kernels.append(self._kernel(project, host, call))
        for call in host.calls_named("SetRuntimeArgs", "SetCommonRuntimeArgs"):
            if len(call.args) < 3:
                continue
            handle = normalise(call.args[1])
            values = call.args[-1].strip()
            listed = (
                split_top_level(values[1:-1]) if values.startswith("{") and values.endswith("}") else None
            )
            if call.base == "SetCommonRuntimeArgs":
                self.common_args[handle] = listed
            else:
                self.runtime_args.setdefault(handle, []).append((listed, call, host.path))

    def _kernel(self, project: Project, host: SourceFile, call: Call) -> KernelSetup:
        strings = _STRING.findall(call.args[1]) if len(call.args) > 1 else []
        path = strings[-1] if strings else normalise(call.args[1]) if len(call.args) > 1 else ""
        file = project.find_kernel(path)
        config = call.args[3] if len(call.args) > 3 else ""
        kind = "unknown"
        if "ComputeConfig" in config:
            kind = "compute"
        elif "DataMovementConfig" in config:
            kind = "dataflow"
        processor = re.search(r"RISCV_([01])\b", config)
        if processor is None and "ReaderDataMovementConfig" in config:
            processor_name: str | None = "RISCV_1"
        elif processor is None and "WriterDataMovementConfig" in config:
            processor_name = "RISCV_0"
        else:
            processor_name = f"RISCV_{processor.group(1)}" if processor else None
        before = host.code[max(0, call.start - 200) : call.start]
        handle = re.search(r"([A-Za-z_]\w*)\s*=\s*(?:[\w:]*::)?\s*$", before)
        compile_args = _compile_args(host, config, call.start)
        named = None
        named_match = re.search(r"\.named_compile_args\s*=\s*(\{.*\})", config, re.DOTALL)
        if named_match:
            named = set(re.findall(r'\{\s*"([^"]+)"\s*,', named_match.group(1)))
        return KernelSetup(
            handle=handle.group(1) if handle else None,
            path=path,
            file=file,
            kind=kind,
            processor=processor_name,
            compile_args=compile_args,
            named_args=named,
            line=call.line,
            host_file=host.path,
        )

    def setup_for(self, kernel_file: str) -> KernelSetup | None:
        return next((k for k in self.kernels if k.file == kernel_file), None)


def _pages(size: str, page: str | None, env: dict[str, str]) -> int | None:
    """Capacity in pages: size / page when both are constants, else the factor left after the page size."""
    total = evaluate_int(size, env)
    if page is not None:
        unit = evaluate_int(page, env)
        if total is not None and unit:
            return total // unit
        factors = [normalise(f) for f in size.split("*")]
        if normalise(page) in factors:
            factors.remove(normalise(page))
            product = 1
            for factor in factors:
                value = evaluate_int(factor, env)
                if value is None:
                    return None
                product *= value
            return product
    return None


def _compile_args(host: SourceFile, config: str, before: int) -> list[str] | None:
    """The compile-time argument slots of a kernel, as expression texts (TensorAccessorArgs take two)."""
    match = re.search(r"\.compile_args\s*=\s*(\{.*?\}|[A-Za-z_]\w*)", config, re.DOTALL)
    if match is None:
        wrapper = re.search(r"(?:Reader|Writer)DataMovementConfig\s*\(\s*([A-Za-z_]\w*|\{.*?\})", config)
        if wrapper is None:
            return [] if config else None
        match = wrapper
    value = match.group(1).strip()
    if value.startswith("{"):
        return [a for a in split_top_level(value[1:-1]) if a]
    slots: list[str] = []
    declared = re.search(
        rf"std::vector\s*<\s*u?int32_t\s*>\s*{re.escape(value)}\s*(?:=\s*)?(\{{[^;]*\}})?\s*;", host.code
    )
    if declared is None:
        return None
    if declared.group(1):
        slots += [a for a in split_top_level(declared.group(1)[1:-1]) if a]
    pattern = re.compile(
        rf"\b{re.escape(value)}\s*\.\s*(?:push_back|emplace_back)\s*\(([^;]*)\)\s*;"
        rf"|TensorAccessorArgs\s*\(([^;]*?)\)\s*\.\s*append_to\s*\(\s*{re.escape(value)}\s*\)"
    )
    for found in pattern.finditer(host.code, declared.end(), before):
        if found.group(1) is not None:
            slots.append(found.group(1).strip())
        else:
            slots += [f"TensorAccessorArgs({found.group(2).strip()})"] * TENSOR_ACCESSOR_SLOTS
    if re.search(rf"\b{re.escape(value)}\s*\.\s*(?:insert|resize|assign)\b", host.code):
        return None
    return slots


@dataclass
class KernelModel:
    """One kernel file as the checks see it."""

    source: SourceFile
    role: FileRole
    setup: KernelSetup | None
    host: HostModel

    @property
    def path(self) -> str:
        return self.source.path

    @cached_property
    def symbols(self) -> dict[str, str]:
        """Kernel variable -> canonical symbol: the host expression passed in its runtime-arg slot."""
        out: dict[str, str] = {}
        args = self.runtime_arg_values()
        for name, value in self.source.assignments.items():
            match = re.fullmatch(r"get_arg_val\s*<[^>]*>\s*\(\s*(\w+)\s*\)", value.strip())
            if match is None:
                continue
            index = self.source.int_value(match.group(1))
            if args is not None and index is not None and index < len(args):
                out[name] = normalise(args[index])
            else:
                out[name] = f"{self.path}:{name}"
        return out

    def runtime_arg_values(self) -> list[str] | None:
        """The runtime args the host passes this kernel (the first SetRuntimeArgs call's list)."""
        if self.setup is None or self.setup.handle is None:
            return None
        calls = self.host.runtime_args.get(self.setup.handle, [])
        listed = [values for values, _, _ in calls if values is not None]
        return listed[0] if listed else None

    @cached_property
    def cb_ops(self) -> list[CbOp]:
        ops: list[CbOp] = []
        for call in self.source.calls_named(*_CB_OPS):
            if len(call.args) != 2:
                continue
            cb = self.cb_value(call.args[0])
            pages = self.source.int_value(call.args[1])
            ops.append(CbOp(call.base, cb, pages, self._total(call, call.args[1]), call.line, call))
        return ops

    def cb_value(self, text: str) -> int | None:
        """A CB id: a constant, a CBIndex, or a compile-time argument whose host value is one."""
        value = self.source.int_value(text)
        if value is not None:
            return value
        expr = self.source.assignments.get(normalise(text), text)
        match = re.search(r"get_compile_time_arg_val\s*\(\s*(\w+)\s*\)", expr)
        if match and self.setup is not None and self.setup.compile_args is not None:
            index = self.source.int_value(match.group(1))
            if index is not None and index < len(self.setup.compile_args):
                slot = self.setup.compile_args[index]
                return cb_index_value(slot) if cb_index_value(slot) is not None else evaluate_int(slot, {})
        return None

    def _total(self, call: Call, count: str) -> tuple[int, tuple[str, ...]] | None:
        coefficient = 1
        symbols: list[str] = []
        for factor in [count, *(loop.trip or "?" for loop in call.loops)]:
            value = self.source.int_value(factor)
            if value is not None:
                coefficient *= value
                continue
            text = normalise(factor)
            if text == "?" or not re.fullmatch(r"[A-Za-z_]\w*", text):
                return None
            symbols.append(self.symbols.get(text, f"{self.path}:{text}"))
        return coefficient, tuple(sorted(symbols))

    @cached_property
    def uses_compute_api(self) -> bool:
        return self.role == FileRole.COMPUTE


@dataclass
class ProjectModel:
    project: Project
    host: HostModel
    kernels: list[KernelModel]

    @classmethod
    def read(cls, project: Project) -> ProjectModel:
        host = HostModel.read(project)
        kernels = [
            KernelModel(source=src, role=role_of(src.path), setup=host.setup_for(src.path), host=host)
            for src in project.kernel_files
        ]
        return cls(project, host, kernels)

    def kernel(self, path: str) -> KernelModel | None:
        return next((k for k in self.kernels if k.path == path), None)
