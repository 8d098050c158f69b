"""``python -m misen.cli`` runs the ``misen`` command."""

from misen.cli import main

main()
