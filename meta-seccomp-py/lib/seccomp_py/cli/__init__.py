"""The seccomp-py command line. One module per subcommand, each with HELP, setup_parser(p) and run(args).

Errors from seccomp_py.errors become a one-line message and exit code 1 (bad input) or 2 (usage).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .. import __version__
from ..errors import SeccompPyError

# Subcommand name -> module under seccomp_py.cli. Modules are imported lazily so one broken
# or heavy subcommand (paramiko for targets) does not slow down or break the others.
SUBCOMMANDS = {
    "collect": "collect",
    "merge": "merge",
    "diff": "diff",
    "show": "show",
    "resolve": "resolve",
    "render": "render",
    "check": "check",
    "translate": "translate",
    "doctor": "doctor",
    "profile": "profile",
    "verify": "verify",
}


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="seccomp-py",
        description="Profile services' system calls and render seccomp filters (systemd, LXC, OCI, Firejail).",
    )
    parser.add_argument("--version", action="version", version=f"seccomp-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module_name}":
                continue  # not built yet
            raise
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.setup_parser(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except SeccompPyError as exc:
        print(f"seccomp-py {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"seccomp-py {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
