"""What the CLI tests share."""

from __future__ import annotations

from chainrule import cli


def main_exit(capsys, *args):
    """Run ``cli.main(ARGS)`` in this process: (exit code, stdout, stderr), argparse exits included."""
    try:
        code = cli.main(list(args))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err
