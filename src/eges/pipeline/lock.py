"""One writer per run folder, and the rules for which folders eges may write at all.

Every command that writes a run folder holds an exclusive ``flock`` on ``OUT/.eges.lock`` (the kernel releases
it when the process dies, however it dies); a second writer fails at once naming the holder's pid. ``eges
status`` takes no lock. While holding it, a writer removes the temporary files a killed writer left behind
(only names eges itself makes). A folder eges did not create is never written into: a non-empty folder
without an eges manifest is refused, and so is one whose ``manifest.json`` is not eges's.

Which manifest is eges's: every manifest eges writes carries the marker ``"eges": {"format": 1, "version": ...}``.
Releases before the marker wrote a ``"stages"`` object from the first moment (``{"stages": {}}`` before the
first stage), so a manifest with either is eges's; one with neither (``{}``, another tool's JSON) is not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from eges.errors import EgesError
from eges.layout import LOCK, MANIFEST

#: Names of eges' own temporary files and folders: ``.NAME.<8 hex>.tmp`` / ``.old`` (atomic writes) and
#: ``.NAME.<pid>.<8 hex>.scratch`` (a stage's scratch file).
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.(tmp|old)$|^\..+\.\d+\.[0-9a-f]{8}\.scratch$")

_held: dict[str, tuple[int, int]] = {}  # resolved folder -> (fd, depth): re-entrant within one process


#: The top-level key of every manifest eges writes (see the module docstring for older manifests).
MARKER = "eges"
#: The manifest format written under the marker.
MANIFEST_FORMAT = 1


class RunLocked(EgesError):
    """Another process is writing the run folder."""


class NotAnEgesRun(EgesError):
    """The folder's manifest.json was not written by eges."""


def is_eges_manifest(manifest: object) -> bool:
    """A parsed manifest eges wrote: the marker, or (releases before the marker) a ``stages`` key. Anything that is
    not a JSON object is left to the manifest's reader, which names it damaged."""
    return not isinstance(manifest, dict) or MARKER in manifest or "stages" in manifest


def foreign_manifest_message(path: Path) -> str:
    return (f"{path} was not written by eges (no '{MARKER}' marker and no 'stages'), so {path.parent} is not an eges "
            "run; eges does not write into folders it did not create: give a new or empty --out")


def check_run_folder(out: Path) -> None:
    """Refuse a path that is a file, or a non-empty folder that holds no eges run (eges never merges into it)."""
    if out.exists() and not out.is_dir():
        raise EgesError(f"--out {out} is a file, not a folder")
    if (out / MANIFEST).is_file():
        with contextlib.suppress(OSError, ValueError):  # unreadable or not JSON: the manifest's reader names it
            if not is_eges_manifest(json.loads((out / MANIFEST).read_text(encoding="utf-8"))):
                raise NotAnEgesRun(foreign_manifest_message(out / MANIFEST))
        return
    if not out.is_dir():
        return
    others = [p.name for p in out.iterdir() if p.name != LOCK and not TEMP_NAME.match(p.name)]
    if others:
        raise EgesError(f"--out {out} is not empty and holds no eges run (no {MANIFEST}; it has "
                        f"{', '.join(sorted(others)[:3])}{', ...' if len(others) > 3 else ''}); give a new or empty "
                        "folder, eges does not write into folders it did not create")


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold the run folder's writer lock (creating the folder if needed); re-entrant in one process."""
    key = str(out.resolve())
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise EgesError(f"cannot write the run folder {out}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunLocked(f"another eges process (pid {holder}) is writing {out}; wait for it to finish or stop "
                            "it (eges status --out reads the folder without waiting)") from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = (fd, 1)
    try:
        remove_orphans(out)
        yield
    finally:
        del _held[key]
        os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the lock; the file stays (removing it would race with a waiting writer)


def holds_lock(out: Path) -> bool:
    return str(out.resolve()) in _held


def remove_orphans(out: Path) -> list[Path]:
    """Delete the temporary files and folders of a killed writer (eges' own names only); call under the lock."""
    removed = []
    for root, dirs, files in os.walk(out):
        for name in [*files, *dirs]:
            if TEMP_NAME.match(name):
                path = Path(root) / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        # A nested run folder (its own lock file) is cleaned by its own writer: another process may be writing it.
        dirs[:] = [d for d in dirs if not TEMP_NAME.match(d) and not os.path.islink(os.path.join(root, d))
                   and not os.path.exists(os.path.join(root, d, LOCK))]
    return removed
