"""The one way a command's parser is made, for the command line and its commands' subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def command(sub: Any, name: str, about: str, **kw: Any) -> argparse.ArgumentParser:
    """Add `name` to the subparsers `sub`; its description is `about` as a sentence."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=about, description=about + ".", **kw)
    parser.set_defaults(parser=parser)  # the command whose usage an unknown argument is about
    return parser
