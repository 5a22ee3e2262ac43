"""Plots and HTML pieces for ``eges report`` (arrays in, PNG bytes and HTML text out; no files)."""
