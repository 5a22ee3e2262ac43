"""Daily updates: runs related to an earlier run (warm start, alignment, drift); array code that writes no files."""
