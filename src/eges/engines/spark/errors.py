"""Spark's failures as one named line: JVM errors a user can foresee are translated, the rest are wrapped with the
stage and the input, so the CLI prints one line and exits 2 (never a Py4J traceback)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from eges.errors import EgesError, InputError


class SparkFailed(EgesError):
    """A Spark job failed for a reason eges did not foresee; the line names the stage, the input and the cause."""


#: Messages of a file that is not Parquet, or a corrupt one (a bad footer, a page past the end of the file).
_CORRUPT = ("CANNOT_READ_FILE_FOOTER", "Could not read footer", "is not a Parquet file", "FAILED_READ_FILE",
            "ArrayIndexOutOfBoundsException", "corrupted file", "ParquetDecodingException",
            "expected magic number")
_FILE = re.compile(r"(?:file|File|path|Path)\s+(?:file:)?(/[^\s,;'\"]+?)(?:\.\s|\.$|[\s,;'\"]|$)")


def _messages(exc: BaseException) -> list[str]:
    """The messages of the error and of every cause down the JVM chain (Py4J errors carry the Java exception)."""
    out = [str(exc)]
    java = getattr(exc, "java_exception", None)
    seen = 0
    while java is not None and seen < 20:
        with contextlib.suppress(Exception):
            out.append(str(java.toString()))
        try:
            java = java.getCause()
        except Exception:
            break
        seen += 1
    return out


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text.strip())
    return re.sub(r"^(An error occurred while calling \S+\.\s*)", "", line)[:400]


def _cause(messages: list[str]) -> str:
    """The most telling line: the deepest Java cause with a message, else the Python error's first line."""
    for text in reversed(messages[1:]):
        line = _first_line(text)
        if line and not line.endswith(("Exception", "Error")):
            return re.sub(r"^[\w.$]+(Exception|Error): ", "", line)
    return _first_line(messages[0])


def translate(exc: BaseException, stage: str | None, what: str) -> EgesError:
    """The named error for a Spark failure in ``stage`` (None: opening the input) while it reads ``what``
    (e.g. "events s3a://b/x")."""
    if isinstance(exc, EgesError):
        return exc
    messages = _messages(exc)
    text = "\n".join(messages)
    if any(mark in text for mark in _CORRUPT):
        found = _FILE.search(text)
        name = found.group(1) if found else what
        return InputError(f"cannot read {what} with Spark: {name} is not a readable Parquet file (corrupt or of "
                          "another format); replace or remove it")
    if "PATH_NOT_FOUND" in text or "Path does not exist" in text:
        return InputError(f"{what} does not exist (Spark: {_cause(messages)})")
    if "TABLE_OR_VIEW_NOT_FOUND" in text:
        return InputError(f"{what}: no such table or view (Spark: {_cause(messages)})")
    if stage is None:
        return InputError(f"cannot read {what} with Spark: {_cause(messages)}")
    if type(exc).__name__ == "AnalysisException":
        return InputError(f"Spark could not read {what} in the {stage} stage: {_cause(messages)}")
    return SparkFailed(f"spark failed in the {stage} stage reading {what}: {_cause(messages)}")


@contextlib.contextmanager
def named_failures(stage: str, what: str) -> Iterator[None]:
    """Run a stage's Spark work; any failure but an interrupt leaves as one named :class:`EgesError`."""
    try:
        yield
    except EgesError:
        raise
    except Exception as exc:  # Py4JJavaError, AnalysisException, SparkException, pyarrow errors on the parts...
        raise translate(exc, stage, what) from None
