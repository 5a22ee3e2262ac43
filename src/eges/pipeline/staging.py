"""A stage's files change together or not at all: each stage that owns a folder writes into a fresh temporary
folder beside it, which takes the folder's place with one rename when the stage returns.

An interrupted stage (an error, SIGINT, a full disk) leaves the old folder as it was; a killed one leaves the
temporary folder, whose name (``.FOLDER.<8 hex>.tmp``, see ``lock.TEMP_NAME``) the next writer removes under the
lock. The swap is one ``renameat2(RENAME_EXCHANGE)`` where the kernel has it (Linux 3.15+, glibc 2.28+), else two
renames (old -> ``.FOLDER.<hex>.old``, new -> FOLDER) with a window of a few microseconds in which the folder is
absent, never mixed. Files in the folder that eges did not write are carried into the new folder (hard links, so
a kill at any point leaves them in place) before the swap.

Stages whose outputs share a folder with other stages or nested runs (the evaluation stages under
``evaluation/``) are not staged: each of their files is still written atomically, but a failure can leave one
protocol's new ``metrics.parquet`` beside its old ``summary.json`` (the manifest then does not vouch for it, and
``eges status`` calls it changed).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from eges.errors import StageError
from eges.pipeline.lock import TEMP_NAME

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def own_folder(name: str, outputs: Iterable[str], all_outputs: dict[str, tuple[str, ...]]) -> str | None:
    """The top-level folder stage ``name`` owns: every output of it lies there and no other stage writes there."""
    tops = {rel.split("/", 1)[0] for rel in outputs if "/" in rel}
    if len(tops) != 1 or any("/" not in rel for rel in outputs):
        return None
    (top,) = tops
    others = (rel for other, rels in all_outputs.items() if other != name for rel in rels)
    return None if any(rel.split("/", 1)[0] == top for rel in others) else top


@contextlib.contextmanager
def staged_folder(out_dir: Path, folder: str, owned: Iterable[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out_dir/folder``; swap it in when the block succeeds, remove it
    otherwise. ``owned`` are the names (relative to the folder) the stage writes or may write: any other entry of
    the old folder is the user's and is carried over."""
    final = out_dir / folder
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        # eges made a folder here; a file or a link (to a folder elsewhere) is the user's: swapping would replace it
        raise StageError(f"{final} is {'a link' if final.is_symlink() else 'a file'}, not the folder eges writes; "
                         "move it away and rerun")
    tmp = out_dir / f".{folder}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            _carry_foreign(final, tmp, set(owned))
        swap_in(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def swap_in(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final`` with one rename (exchanging with an old ``final``, which is then removed)."""
    if not final.exists() and not final.is_symlink():
        os.rename(new, final)
        return
    if exchange(new, final):
        _remove(new)  # now holds the old folder
        return
    old = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
    try:
        os.rename(final, old)
        os.rename(new, final)
    except BaseException:  # an interrupt between or after the renames included: never leave the folder absent
        if old.exists() and not final.exists():
            os.rename(old, final)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths with ``renameat2(RENAME_EXCHANGE)``; False where the system has no such call
    or the call fails (ENOSYS, EINVAL or EOPNOTSUPP from a file system without it): a failed call changed nothing,
    and the two renames that follow name any real problem themselves."""
    func = _renameat2()
    return func is not None and func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


_libc: list = []


def _renameat2():  # noqa: ANN202
    if not _libc:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name, use_errno=True) if name else None
            func = getattr(lib, "renameat2", None) if lib is not None else None
        except OSError:
            func = None
        if func is not None:
            func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            func.restype = ctypes.c_int
        _libc.append(func)
    return _libc[0]


def _carry_foreign(old: Path, new: Path, owned: set[str]) -> None:
    """Hard-link every entry of ``old`` that eges did not write into ``new`` (a copy where links fail)."""
    for entry in old.iterdir():
        if entry.name in owned or TEMP_NAME.match(entry.name) or (new / entry.name).exists():
            continue
        _link_tree(entry, new / entry.name)


def _link_tree(src: Path, dst: Path) -> None:
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir()
        shutil.copystat(src, dst)
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
    else:
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, dst, follow_symlinks=False)
