"""One BLAS thread while numba's parallel loops run beside matrix products.

OpenBLAS's threads spin for a while after each product and take the cores numba's threads need: the neighbours'
search lost more than half its selection time to them (docs/studies/neighbours-kernel.md, "Half the products, one
BLAS thread"), and training, whose passes alternate with the validation slice's scoring, ran a fifth to two fifths
slower in a default run (docs/studies/trainer-kernel.md, "BLAS threads beside training").
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any


class _OneBlasThread:
    """BLAS limited to one thread while the main thread is inside; nested uses share one limit, the last out
    restoring what was there (leaving through threadpoolctl's own exit, which also gives up OpenBLAS's control)."""

    def __init__(self) -> None:
        self.depth = 0
        self.limit: Any = None

    def __enter__(self) -> None:
        if self.depth == 0:  # a fresh look at the loaded libraries each time (0.4 ms): faiss brings its own
            from threadpoolctl import ThreadpoolController

            self.limit = ThreadpoolController().limit(limits=1, user_api="blas")
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            limit, self.limit = self.limit, None
            limit.__exit__(None, None, None)


_ONE_BLAS_THREAD = _OneBlasThread()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS limited to one thread for a loop that alternates matrix products with numba's parallel loops:
    OpenBLAS's threads spin for a while after each product and take cores from numba's (docs/studies/
    neighbours-kernel.md, "Half the products, one BLAS thread"). Only in the main thread: threadpoolctl lets one
    thread own a (pthreads) OpenBLAS's limit and silently ignores the others, so elsewhere this does nothing and
    BLAS keeps its threads (slower, never wrong)."""
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _ONE_BLAS_THREAD
