"""Command layer: ``python -m pipeline <command> ...``.

``parser`` builds the command line, ``commands`` reads files, calls one function of the
package and writes files (``files``: atomically).  Nothing else in the package knows paths.
"""
from __future__ import annotations

import sys

from ..core.errors import InputError
from .parser import build_parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []     # for Snakemake (`run`)
    args = build_parser().parse_args(argv[:len(argv) - len(extra) - bool(extra)])
    if extra:
        args.snakemake_args = extra
    try:
        status = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0
