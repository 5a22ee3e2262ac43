"""Getting a SparkSession for the spark backend: the active one if there is one, else a new one from the config.

An active session (spark-submit on YARN or Kubernetes, a notebook, a test) already carries its master and
settings, so eges uses it as it is; otherwise ``engine.spark_master`` and ``engine.spark_conf`` build one.
``SPARK_HOME`` and ``PYSPARK_SUBMIT_ARGS`` are read by pyspark itself.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from eges.config import EngineConfig
from eges.errors import EgesError
from eges.pipeline.io import TABLE_PREFIX

INSTALL = ("the spark backend needs pyspark and a Java runtime: pip install 'eges[spark]' and install Java 17 "
           "or later (e.g. apt-get install openjdk-17-jre-headless), or set engine.backend = \"duckdb\"")


class SparkUnavailable(EgesError):
    """engine.backend = "spark" without pyspark or without Java."""


_given: list[Any] = []


@contextlib.contextmanager
def use_session(session: Any) -> Iterator[None]:
    """Run the block with ``session`` as the spark engine's session (``eges.run(..., spark=session)``)."""
    _given.append(session)
    try:
        yield
    finally:
        _given.pop()


def spark_session(engine: EngineConfig) -> Any:
    """The session given to :func:`use_session`, the active SparkSession, or a new one with the configured master
    and ``spark.*`` settings."""
    if _given:
        return _given[-1]
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(f"{INSTALL} (pyspark is not installed)") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    import os

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SparkUnavailable(f"{INSTALL} (no java on PATH and JAVA_HOME is not set)")
    builder = SparkSession.builder.appName("eges").master(engine.spark_master)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for item in engine.spark_conf:
        key, value = item.split("=", 1)
        builder = builder.config(key.strip(), value.strip())
    if engine.spark_master.startswith("local"):
        # Python workers on this machine run this interpreter (it has eges, numpy and pyarrow), not python3;
        # pyspark reads the variable when the context starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up errors come in several types
        raise SparkUnavailable(f"{INSTALL} (Spark did not start: {str(exc).splitlines()[0]})") from None
    session.sparkContext.setLogLevel("ERROR")
    # A session eges started is eges' to stop, before the interpreter exits: left to the JVM's shutdown, a
    # cluster master's workers log a screen of errors relaunching executors.
    atexit.register(session.stop)
    return session


def read_source(spark: Any, source: str, fmt: str, what: str) -> Any:
    """A DataFrame of an input: a Parquet or CSV path or folder on any filesystem Spark reads, or ``table:NAME``
    (a bare name without a slash or suffix is read as a table too). ``what`` names it in the error."""
    lower = source.lower()
    try:
        if source.startswith(TABLE_PREFIX):
            return spark.table(source[len(TABLE_PREFIX):])
        if lower.endswith((".csv", ".csv.gz", ".tsv")) or fmt == "csv":
            return spark.read.option("header", "true").option("inferSchema", "true").csv(source)
        if "/" in source or lower.endswith(".parquet") or fmt == "parquet":
            return spark.read.parquet(source)
        return spark.table(source)
    except Exception as exc:  # AnalysisException, Py4JJavaError (a corrupt footer) and friends
        from eges.engines.spark.errors import translate

        raise translate(exc, None, f"{what} {source}") from None
