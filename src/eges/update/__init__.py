"""Daily updates: a run that continues from its parent run (warm start); pure array code, no files."""
