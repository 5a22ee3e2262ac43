"""Getting a SparkSession for the spark backend: the active one if there is one, else a new one from the config.

An active session (spark-submit on YARN or Kubernetes, a notebook, a test) already carries its master and
settings, so eges uses it as it is; otherwise ``engine.spark_master`` and ``engine.spark_conf`` build one.
``SPARK_HOME`` and ``PYSPARK_SUBMIT_ARGS`` are read by pyspark itself.
"""

from __future__ import annotations

import shutil
from typing import Any

from eges.config import EngineConfig
from eges.errors import EgesError

INSTALL = ("the spark backend needs pyspark and a Java runtime: pip install 'eges[spark]' and install Java 17 "
           "or later (e.g. apt-get install openjdk-17-jre-headless), or set engine.backend = \"duckdb\"")


class SparkUnavailable(EgesError):
    """engine.backend = "spark" without pyspark or without Java."""


def spark_session(engine: EngineConfig) -> Any:
    """The active SparkSession, or a new one with the configured master and ``spark.*`` settings."""
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
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up errors come in several types
        raise SparkUnavailable(f"{INSTALL} (Spark did not start: {str(exc).splitlines()[0]})") from None
    session.sparkContext.setLogLevel("ERROR")
    return session
