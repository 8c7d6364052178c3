"""Circular-buffer consistency across the host, reader, compute and writer.

A CB is a ring of pages shared by one producer and one consumer on a core. The device hangs (no error,
no timeout by default) when a consumer waits for pages nobody pushes, when a producer reserves more
pages than the ring holds, or when totals pushed and popped differ. These are found here statically:
indices (configured on the host, used by kernels, with both a producer and a consumer), per-kernel
pairing (reserve n / push n, wait n / pop n), requests against capacity, and totals over loops.
"""

from __future__ import annotations

from collections import defaultdict

from kernelwright.domain import Diagnostic
from knowledge.ttmetal._diag import error, warning
from knowledge.ttmetal.model import CbOp, KernelModel, ProjectModel
from knowledge.ttmetal.project import FileRole

__all__ = ["check_circular_buffers"]

_MAX_CB = 32


def _fmt(total: tuple[int, tuple[str, ...]]) -> str:
    coefficient, symbols = total
    names = [s.rsplit(":", 1)[-1] for s in symbols]
    return " x ".join([str(coefficient), *names]) if names else str(coefficient)


def check_circular_buffers(model: ProjectModel) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    configured = {cb.index: cb for cb in model.host.cbs if cb.index is not None}
    for config_row in model.host.cbs:
        if config_row.index is not None and not 0 <= config_row.index < _MAX_CB:
            found.append(
                error(
                    "ttm.cb.index_range",
                    config_row.file,
                    config_row.line,
                    f"circular buffer index {config_row.index} is out of range (0..{_MAX_CB - 1})",
                    "use tt::CBIndex::c_0 .. c_31",
                )
            )
    producers: dict[int, list[tuple[KernelModel, CbOp]]] = defaultdict(list)
    consumers: dict[int, list[tuple[KernelModel, CbOp]]] = defaultdict(list)
    used: set[int] = set()
    have_host = bool(model.project.host_files)
    for kernel in model.kernels:
        found += _pairing(kernel)
        for op in kernel.cb_ops:
            if op.cb is None:
                continue
            used.add(op.cb)
            if op.op == "cb_push_back":
                producers[op.cb].append((kernel, op))
            elif op.op in ("cb_wait_front", "cb_pop_front"):
                consumers[op.cb].append((kernel, op))
            config = configured.get(op.cb)
            if config is None and have_host and not model.host.cbs_dynamic:
                if not any(d.code == "ttm.cb.not_configured" and d.file == kernel.path for d in found):
                    found.append(
                        error(
                            "ttm.cb.not_configured",
                            kernel.path,
                            op.line,
                            f"the kernel uses circular buffer {op.cb}, which the host never creates",
                            f"create it on the host: CreateCircularBuffer(program, cores, "
                            f"CircularBufferConfig("
                            f"pages * tile_bytes, {{{{tt::CBIndex::c_{op.cb}, data_format}}}})"
                            f".set_page_size(tt::CBIndex::c_{op.cb}, tile_bytes))",
                        )
                    )
            elif (
                config is not None
                and config.pages is not None
                and op.pages is not None
                and op.op in ("cb_reserve_back", "cb_wait_front")
                and op.pages > config.pages
            ):
                found.append(
                    error(
                        "ttm.cb.exceeds_capacity",
                        kernel.path,
                        op.line,
                        f"{op.op}(c_{op.cb}, {op.pages}) asks for more pages than the buffer holds "
                        f"({config.pages}, {config.file}:{config.line}): it waits forever",
                        f"make CB {op.cb} hold at least {op.pages} pages on the host, or "
                        f"move fewer at a time",
                    )
                )
        for call in kernel.source.calls_named("pack_tile"):
            if len(call.args) >= 2:
                cb = kernel.cb_value(call.args[1])
                if cb is not None:
                    used.add(cb)
    kernel_roles = {k.role for k in model.kernels}
    for cb, ops in sorted(consumers.items()):
        if cb not in producers and not _packed_into(model, cb):
            kernel, op = ops[0]
            found.append(
                error(
                    "ttm.cb.no_producer",
                    kernel.path,
                    op.line,
                    f"{op.op} on circular buffer {cb}, but no kernel ever pushes pages into it: "
                    f"the device hangs",
                    f"the producer (reader or compute) must cb_reserve_back/cb_push_back CB "
                    f"{cb}; check the index",
                )
            )
    for cb, ops in sorted(producers.items()):
        if cb not in consumers:
            kernel, op = ops[0]
            found.append(
                error(
                    "ttm.cb.no_consumer",
                    kernel.path,
                    op.line,
                    f"pages are pushed into circular buffer {cb}, but no kernel waits for or pops them: "
                    "the producer blocks once the buffer is full",
                    f"the consumer must cb_wait_front/cb_pop_front CB {cb}; check the index it uses",
                )
            )
    found += _totals(producers, consumers)
    if have_host and FileRole.COMPUTE in kernel_roles | {FileRole.DATAFLOW}:
        for cb_index, config in sorted(configured.items()):
            if cb_index not in used and model.kernels:
                found.append(
                    warning(
                        "ttm.cb.unused",
                        config.file,
                        config.line,
                        f"circular buffer {cb_index} is created but no kernel uses it",
                        "remove it, or check the index the kernels use",
                    )
                )
    return found


def _packed_into(model: ProjectModel, cb: int) -> bool:
    return any(
        len(call.args) >= 2 and kernel.cb_value(call.args[1]) == cb
        for kernel in model.kernels
        for call in kernel.source.calls_named("pack_tile")
    )


def _pairing(kernel: KernelModel) -> list[Diagnostic]:
    """Within one kernel: reserve n ... push n, wait n ... pop n, for each CB."""
    found: list[Diagnostic] = []
    by_cb: dict[int, dict[str, list[CbOp]]] = defaultdict(lambda: defaultdict(list))
    for op in kernel.cb_ops:
        if op.cb is not None:
            by_cb[op.cb][op.op].append(op)
    for cb, ops in sorted(by_cb.items()):
        for first, second, code in (
            ("cb_reserve_back", "cb_push_back", "ttm.cb.reserve_push_mismatch"),
            ("cb_wait_front", "cb_pop_front", "ttm.cb.wait_pop_mismatch"),
        ):
            a, b = ops.get(first, []), ops.get(second, [])
            if a and not b:
                found.append(
                    error(
                        code,
                        kernel.path,
                        a[0].line,
                        f"{first} on circular buffer {cb} is never followed by {second} in this kernel",
                        f"call {second}(cb, n) once the pages are written/read, or the other "
                        f"side waits forever",
                    )
                )
            elif b and not a and second == "cb_push_back":
                found.append(
                    error(
                        code,
                        kernel.path,
                        b[0].line,
                        f"cb_push_back on circular buffer {cb} without a cb_reserve_back before it",
                        "reserve the pages (cb_reserve_back) before writing and pushing them",
                    )
                )
            elif a and b and a[0].total and b[0].total and a[0].total != b[0].total:
                found.append(
                    error(
                        code,
                        kernel.path,
                        b[0].line,
                        f"{first} takes {_fmt(a[0].total)} pages of circular buffer {cb} but {second} "
                        f"releases {_fmt(b[0].total)}",
                        f"pass the same page count to {first} and {second}",
                    )
                )
    return found


def _totals(
    producers: dict[int, list[tuple[KernelModel, CbOp]]], consumers: dict[int, list[tuple[KernelModel, CbOp]]]
) -> list[Diagnostic]:
    """Pages pushed over the whole run vs pages popped, when both are known in the same symbols."""
    found: list[Diagnostic] = []
    for cb, pushes in sorted(producers.items()):
        pops = [(k, op) for k, op in consumers.get(cb, []) if op.op == "cb_pop_front"]
        if len(pushes) != 1 or len(pops) != 1:
            continue
        (pk, push), (ck, pop) = pushes[0], pops[0]
        if push.total is None or pop.total is None or pk is ck:
            continue
        if push.total[1] == pop.total[1] and push.total[0] != pop.total[0]:
            found.append(
                error(
                    "ttm.cb.count_mismatch",
                    ck.path,
                    pop.line,
                    f"{pk.path} pushes {_fmt(push.total)} pages into circular buffer {cb} but {ck.path} "
                    f"pops {_fmt(pop.total)}: one side blocks forever",
                    "make the producer's pages per iteration x iterations equal the consumer's",
                )
            )
    return found
