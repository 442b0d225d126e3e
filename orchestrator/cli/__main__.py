"""``python -m orchestrator.cli``: the same as the ``stepweave`` command."""

from . import main

main()
