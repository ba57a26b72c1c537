"""Run the CLI in-process (fast) the way a shell would: argv in, exit code + output out."""

from __future__ import annotations

import sys


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from faultlens.cli import main

    old = sys.argv
    sys.argv = ["faultlens", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err
