"""A software prefetch for numba kernels: ask the CPU to start loading a table row that a later step will read.

The trainer's random rows (the next centre's own row, the row entering its window, its negatives) miss the caches
on a large vocabulary; their addresses are known a step ahead, so their loads can overlap the current step's
arithmetic. numba has no prefetch of its own, so this emits LLVM's ``llvm.prefetch`` (a hint: it never faults and
changes no value). numba's cache of a kernel checks only the kernel's own file: after editing this one, clear the
cache (``__pycache__``'s ``*.nbi``/``*.nbc``) or the kernels keep the old code.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

#: Bytes in a cache line on the CPUs numba targets (x86-64 and arm64 servers).
LINE_BYTES = 64


@intrinsic
def _prefetch(typingctx, array, row, col):  # noqa: ANN001, ANN202, ARG001
    """Prefetch the cache line holding ``array[row, col]`` for reading (locality 3: keep it in every cache level)."""
    if not (isinstance(array, types.Array) and array.ndim == 2 and isinstance(row, types.Integer)
            and isinstance(col, types.Integer)):
        return None

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        aryty, rowty, colty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        index = [context.cast(builder, args[1], rowty, types.intp), context.cast(builder, args[2], colty, types.intp)]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index, wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [ptr.type], fnty)  # named for typed or opaque pointers
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


@njit(cache=True, inline="always")
def prefetch_row(array, row):  # noqa: ANN001, ANN201
    """Prefetch every cache line of ``array[row]`` (a C-contiguous 2-D array): one per line's worth of columns from
    the row's start, and its last column, since a row need not start on a line's boundary."""
    step = max(LINE_BYTES // array.itemsize, 1)
    for col in range(0, array.shape[1], step):
        _prefetch(array, row, col)
    if array.shape[1] > 0:
        _prefetch(array, row, array.shape[1] - 1)
