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
    settings = {"spark.app.name": "eges", "spark.master": engine.spark_master,
                "spark.ui.showConsoleProgress": "false"}
    if engine.temp_directory and engine.spark_master.startswith("local"):
        settings["spark.local.dir"] = engine.temp_directory  # Spark's shuffle and spill files, like DuckDB's
    for item in engine.spark_conf:
        key, value = item.split("=", 1)
        settings[key.strip()] = value.strip()
    if engine.spark_master.startswith("local"):
        # Python workers on this machine run this interpreter (it has eges, numpy and pyarrow), not python3;
        # pyspark reads the variable when the context starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        _quiet(settings, engine.spark_log_level)
        builder = SparkSession.builder
        for key, value in settings.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up errors come in several types
        raise SparkUnavailable(f"{INSTALL} (Spark did not start: {str(exc).splitlines()[0]})") from None
    session.sparkContext.setLogLevel(engine.spark_log_level)
    # A session eges started is eges' to stop, before the interpreter exits: left to the JVM's shutdown, a
    # cluster master's workers log a screen of errors relaunching executors.
    atexit.register(session.stop)
    return session


def _quiet(settings: dict[str, str], level: str) -> None:
    """Start (or join, under spark-submit) the JVM with ``settings`` and set its log level before the context
    starts: Spark logs a screen of INFO lines while it starts and runs each job, and py4j logs every call."""
    import logging

    from pyspark import SparkConf, SparkContext

    logging.getLogger("py4j").setLevel(logging.WARNING)
    options = settings.get("spark.driver.extraJavaOptions", "")
    if SparkContext._gateway is None and "log4j2.configurationFile" not in options:
        # eges launches the JVM: a log4j file of its own also quiets the lines Spark logs while it starts (added
        # to the user's own JVM options, which would otherwise bring Spark's start-up screen back)
        log4j = f"-Dlog4j2.configurationFile={_log4j_file(level)}"
        settings = {**settings, "spark.driver.extraJavaOptions": f"{options} {log4j}".strip()}
    SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=True).setAll(list(settings.items())))
    jvm = SparkContext._jvm
    with contextlib.suppress(Exception):  # a JVM without log4j 2 (Spark < 3.3) keeps its own configuration
        log4j = jvm.org.apache.logging.log4j
        log4j.core.config.Configurator.setRootLevel(log4j.Level.valueOf(level))


def _log4j_file(level: str) -> str:
    """A log4j 2 configuration (console on stderr at ``level``), written once per level under the temp folder."""
    import tempfile
    from pathlib import Path

    path = Path(tempfile.gettempdir()) / f"eges-log4j2-{level.lower()}.properties"
    text = (f"rootLogger.level = {level.lower()}\nrootLogger.appenderRef.stderr.ref = console\n"
            "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex\n")
    if not path.exists() or path.read_text() != text:
        from eges.pipeline.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return str(path)


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
