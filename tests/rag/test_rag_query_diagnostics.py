"""Compiler output turned into search queries: noise stripped, messages deduplicated."""

from __future__ import annotations

from rag.diagnostics import MAX_MESSAGES, is_diagnostic, search_messages, strip_noise


def test_plain_queries_pass_through() -> None:
    assert not is_diagnostic("How do I print a circular buffer?")
    assert search_messages("How do I print a circular buffer?") == ["How do I print a circular buffer?"]


def test_messages_lose_location_registers_and_paths() -> None:
    log = (
        "ptxas /tmp/tmpxft_000065a5_00000000-6_e8.ptx, line 26; error   : Arguments mismatch for "
        "instruction 'add'\n"
        "ptxas /tmp/tmpxft_000065a5_00000000-6_e8.ptx, line 26; error   : Unknown symbol '%q5'\n"
        "ptxas /tmp/tmpxft_000065a5_00000000-6_e8.ptx, line 27; error   : Unknown symbol '%q5'\n"
        "ptxas fatal   : Ptx assembly aborted due to errors"
    )
    assert is_diagnostic(log)
    assert search_messages(log) == ["Arguments mismatch for instruction 'add'", "Unknown symbol"]


def test_requirements_are_kept_and_types_name_their_variables() -> None:
    assert search_messages(
        "ptxas k.ptx, line 11; error   : Feature 'cp.async' requires .target sm_80 or higher"
    ) == ["Feature 'cp.async' requires .target sm_80 or higher"]
    log = (
        'e1.cu(1): error: no operator "*" matches these operands\n'
        "            operand types are: const unsigned int * const dim3"
    )
    (message,) = search_messages(log)
    assert message.startswith('no operator "*" matches these operands operand types are:')
    assert message.endswith("dim3 blockDim gridDim")
    assert strip_noise("bad address 0x7ffd1234 at /usr/local/cuda/include/x.h line 4") == "bad address at"


def test_many_messages_are_capped() -> None:
    log = "\n".join(f'k.cu({i}): error: identifier "name{i}" is undefined' for i in range(10))
    assert len(search_messages(log)) == MAX_MESSAGES
