"""``python -m eges`` runs the command line."""

from eges.cli import main

main()
