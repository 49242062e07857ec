"""Command layer: ``python -m pipeline <command> ...``.

``parser`` builds the command line, ``commands`` reads files, calls one function of the
package and writes files (``files``: atomically).  Nothing else in the package knows paths.
"""
from __future__ import annotations

import sys

from ..core.errors import InputError
from .parser import build_parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
