"""``alexnet-book lab``: start JupyterLab on the notebooks (this process becomes JupyterLab)."""
from __future__ import annotations

import os
import sys

from ..lab import FIRST_NOTEBOOK, lab_command, project_folder
from .common import Parser


def main(argv: list[str]) -> int:
    """``alexnet-book lab``: start JupyterLab on the notebooks (this process becomes JupyterLab)."""
    parser = Parser(
        prog="alexnet-book lab",
        description="JupyterLab on the book's notebooks with this Python: 127.0.0.1 only, behind a token, "
                    "--allow-root when run as root, no news pop-up. Options it does not know go to JupyterLab.")
    parser.add_argument("notebook", nargs="?", default=None,
                        help=f"notebook to open, relative to the project (default: notebooks/{FIRST_NOTEBOOK})")
    parser.add_argument("--port", type=int, default=None, help="port (default: JupyterLab's, 8888 or the next free)")
    parser.add_argument("--token", default=None, help="token (default: a random one, shown in the URL printed)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    args, extra = parser.parse_known_args(argv)
    try:
        folder = project_folder()
    except FileNotFoundError as error:
        print(f"alexnet-book lab: {error}", file=sys.stderr)
        return 2
    command, env = lab_command(args.notebook, port=args.port, token=args.token, browser=not args.no_browser,
                               config_dir=folder / "build" / "jupyter", extra=extra)
    os.chdir(folder)
    sys.stdout.flush()
    os.execve(command[0], command, env)  # Ctrl-C and the exit status are JupyterLab's own
    return 0  # not reached
