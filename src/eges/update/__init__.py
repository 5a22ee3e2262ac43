"""Daily updates: runs related to an earlier run (warm start, alignment, drift); pure array code, no files."""
