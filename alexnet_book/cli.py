"""``alexnet-book``: the console entry point (pyproject's ``[project.scripts]``); the commands live in
:mod:`alexnet_book.commands`, one module per subcommand."""
from __future__ import annotations

import sys

from .commands import main

if __name__ == "__main__":
    sys.exit(main())
