"""Where an export may go, and what it may replace there.

Rules (docs/exports.md, "Where an export goes"):

- ``--to`` may be new, an empty folder, or eges' own earlier export of the same format (``--force``: of any
  format). The run folder, a folder holding it, and the run's stage folders are refused.
- A folder export replaces only the files its marker (``export.json``) lists. A folder that also holds anything
  else (your ``notes.txt``, a ``mydir/``) is **refused**, naming what is in the way: eges neither deletes your
  files nor mixes them into a folder it swaps atomically.
- A folder format (npy, projector) refuses a path named like a file (``x.npy``), and a file format refuses a path
  that ends in a separator or has no suffix (``DIR/``), so neither silently writes the other kind.
- The temporary names eges writes beside a destination (``.NAME.<8 hex>.tmp`` and ``.old``) that a killed export
  left behind are removed at the next export to that destination; nothing else is touched.
- A full disk is reported as ``no space left on DEVICE: free N MB``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from eges.errors import InputError
from eges.layout import EXPORT_MARKER as MARKER
from eges.layout import EXPORT_MARKER_KEY as MARKER_KEY
from eges.layout import LOCK, MANIFEST, REPORT, SPILL, VARIANTS

FORMATS = ("parquet", "npy", "word2vec", "projector", "neighbours")
FOLDER_FORMATS = ("npy", "projector")
#: The files each folder export writes (an older export's marker did not list them).
FOLDER_FILES = {"npy": ("embeddings.npy", "vocabulary.parquet", "vocabulary.tsv", MARKER),
                "projector": ("vectors.tsv", "metadata.tsv", "projector_config.pbtxt", MARKER)}
#: Suffixes of single files: a folder export refuses a path named like one.
FILE_SUFFIXES = {".npy", ".npz", ".parquet", ".txt", ".bin", ".csv", ".tsv", ".json", ".vec", ".w2v"}
#: What each file format's name should end with.
FILE_HINT = {"parquet": ".parquet", "word2vec": ".txt (text) or .bin (binary)", "neighbours": ".parquet or .csv"}


def sidecar(to: Path) -> Path:
    """The marker beside a single-file export that cannot carry one inside (word2vec, CSV)."""
    return to.with_name(to.name + "." + MARKER)


def read_marker(path: Path) -> dict | None:
    """The marker of eges' own export at ``path``, or None when ``path`` is not one."""
    try:
        if path.is_dir():
            marker = json.loads((path / MARKER).read_text())
        elif path.suffix == ".parquet":
            raw = (pq.read_schema(path).metadata or {}).get(MARKER_KEY)
            marker = json.loads(raw) if raw else {}
        else:
            marker = json.loads(sidecar(path).read_text())
    except (OSError, ValueError, pa.ArrowException):
        return None
    if not isinstance(marker, dict):
        return None
    if marker.get("eges_export") is None and path.is_dir() and {"method", "padding_row"} <= set(marker):
        marker = {**marker, "eges_export": "npy"}  # an npy export of a release before the marker named its format
    return marker if marker.get("eges_export") in FORMATS else None


def export_kind(path: Path) -> str | None:
    """The format of eges' own export at ``path``, or None when ``path`` is not one."""
    marker = read_marker(path)
    return marker["eges_export"] if marker else None


def foreign_entries(path: Path, marker: dict) -> list[str]:
    """What a folder export holds that it did not write (by its marker's file list)."""
    files = marker.get("files")
    own = set(files) if isinstance(files, list) else set(FOLDER_FILES.get(marker["eges_export"], (MARKER,)))
    return sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir() if p.name not in own)


def check_destination(out_dir: Path, fmt: str, to: str | Path, force: bool) -> bool:
    """Refuse a destination that would destroy data or write the wrong kind; True when ``to`` lies inside the run.

    Raises:
        InputError: see the module's rules.
    """
    from eges.pipeline import PIPELINE, STAGES

    raw = str(to)
    to = Path(to)
    run = out_dir.resolve()
    dest = to.parent.resolve() / to.name
    if dest == run or run.is_relative_to(dest):
        raise InputError(f"--to {to} holds the run folder {out_dir}; an export there would replace the run. "
                         "Give a path of its own, e.g. --to " + str(out_dir / "export" / fmt))
    if dest.is_relative_to(run):
        top = dest.relative_to(run).parts[0]
        owned = {rel.split("/")[0] for name in PIPELINE for rel in STAGES[name].outputs}
        owned |= {MANIFEST, LOCK, SPILL, REPORT, VARIANTS}
        if top in owned:
            raise InputError(f"--to {to} is inside the run's own {top} (written by eges stages); export to a "
                             f"folder of its own, e.g. --to {out_dir / 'export' / fmt}")
    folder = fmt in FOLDER_FORMATS
    if folder and to.suffix.lower() in FILE_SUFFIXES and not dest.is_dir():
        raise InputError(f"--to {to}: the {fmt} export is a folder ({', '.join(FOLDER_FILES[fmt][:-1])}, ...), "
                         f"not a {to.suffix} file; give a folder path, e.g. --to {to.with_suffix('')}")
    if not folder and not dest.is_dir() and (raw.endswith(("/", os.sep)) or not to.suffix):
        raise InputError(f"--to {raw}: the {fmt} export is one file, not a folder; give a file name ending "
                         f"{FILE_HINT[fmt]}, e.g. --to {to / ('vectors' + FILE_HINT[fmt].split()[0])}")
    if not (dest.exists() or dest.is_symlink()):
        return dest.is_relative_to(run)
    if folder and not dest.is_dir():
        raise InputError(f"--to {to} is a file; the {fmt} export is a folder: give a new path")
    if not folder and dest.is_dir():
        raise InputError(f"--to {to} is a folder; the {fmt} export is one file: give a file path")
    if folder and not any(dest.iterdir()):
        return dest.is_relative_to(run)
    marker = read_marker(dest)
    if marker is None:
        raise InputError(f"--to {to} already exists and is not an eges export (eges replaces only its own exports); "
                         "give a new path")
    kind = marker["eges_export"]
    if kind != fmt and not force:
        raise InputError(f"--to {to} holds an eges {kind} export, not {fmt}; add --force to replace it")
    if dest.is_dir():
        foreign = foreign_entries(dest, marker)
        if foreign:
            raise InputError(f"--to {to} holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''} beside "
                             "the eges export, which the export did not write; eges replaces only its own files: "
                             "move them away or give a new path")
    return dest.is_relative_to(run)


# --------------------------------------------------------------------------------------------- temporaries
def _temporary_pattern(name: str) -> re.Pattern[str]:
    """The names io.atomic_path and io.atomic_dir give temporaries of ``name`` (and of its marker sidecar)."""
    names = "|".join(re.escape(n) for n in (name, name + "." + MARKER))
    return re.compile(rf"\.(?:{names})\.[0-9a-f]{{8}}\.(?:tmp|old)")


def remove_stale_temporaries(to: Path) -> list[Path]:
    """Remove what a killed export to ``to`` left beside it (eges' own temporary names only); returns them."""
    if not to.parent.is_dir():
        return []
    pattern = _temporary_pattern(to.name)
    removed = []
    for entry in to.parent.iterdir():
        if pattern.fullmatch(entry.name) and not entry.is_symlink():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def exclusive(to: Path) -> Iterator[None]:
    """One export at a time beside ``to`` (an advisory lock on its folder, which creates no file), so removing a
    killed export's temporaries never removes those of an export still running."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: nothing to coordinate with
        yield
        return
    to.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(to.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"another eges export is writing into {to.parent}; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------- a full disk
def _device(path: Path) -> str:
    """The mount point holding ``path`` (how a user finds the disk to clear)."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return str(path)


def is_disk_full(exc: OSError) -> bool:
    text = str(exc)
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or (
        "requested" in text and "written" in text)  # pyarrow's words for a short write


@contextlib.contextmanager
def disk_full_named(to: Path, needed_bytes: int) -> Iterator[None]:
    """Turn a full disk while writing ``to`` into ``no space left on DEVICE: free N MB``."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        device = _device(to.parent)
        free = shutil.disk_usage(device).free
        short = max(1, math.ceil((needed_bytes - free) / 2**20))
        raise InputError(f"no space left on {device}: free {short} MB (the export of {to} needs about "
                         f"{math.ceil(needed_bytes / 2**20)} MB); nothing was replaced") from None
