"""The ``sealroom`` command."""

from __future__ import annotations

import argparse
import sys

from sealroom import __version__, demo_unwrap


def _cmd_demo(args: argparse.Namespace) -> int:
    return 0 if demo_unwrap.run(sys.stdout) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealroom",
        description="Zero-trust end-to-end encryption for video meetings.",
    )
    parser.add_argument("--version", action="version", version=f"sealroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser(
        "demo",
        help="unwrap a DEK group → user → device and show the cost of each step",
        description="Play every party in one process: a DEK encrypted once to a group is "
        "transformed by the key service and decrypted on a device; then the attacks that "
        "must fail are tried.",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
