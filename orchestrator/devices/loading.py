"""Load the tools an agent offers from modules named on its command line.

The loader itself is ``tools.load_tools`` (the CLI's ``--tools`` uses it too); it is
re-exported here because agents are where most users meet it.
"""

from __future__ import annotations

from tools.loading import load_tools

__all__ = ["load_tools"]
