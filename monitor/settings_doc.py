"""The settings as documentation, rendered from their declarations in `monitor.config`.

`python -m monitor.settings_doc` prints README's settings table; `--write README.md` replaces the
table in place (a test checks that README's table is exactly this rendering).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.config import FIELDS

TABLE_HEAD = "| Setting | Environment variable | Default | Meaning |\n|---|---|---|---|\n"


def settings_table() -> str:
    """README's Markdown table: one row per setting, in declaration order."""
    rows = [
        f"| `{f.name}` | `{f.env}` | {f'`{f.default}`' if f.default else '(none)'} | {f.meaning} |\n"
        for f in FIELDS
    ]
    return TABLE_HEAD + "".join(rows)


def settings_help() -> str:
    """The list `run --help` ends with: every setting, its environment variable and default."""
    lines = ["settings (TOML key, environment variable, default):"]
    for f in FIELDS:
        lines.append(f"  {f.name}  {f.env}  [default: {f.default or 'none'}]")
        lines.append(f"      {f.meaning}")
    lines.append("the API key: LIBERTAI_API_KEY, or LIBERTAI_MONITOR_API_KEY_FILE naming a file holding it")
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The settings table as it stands in README's text ('' when there is none)."""
    start = text.find(TABLE_HEAD)
    if start < 0:
        return ""
    end = text.find("\n\n", start)
    return text[start : (len(text) if end < 0 else end + 1)]


def write_readme(path: Path) -> bool:
    """Replace README's settings table by the rendering; True when the file changed."""
    text = path.read_text()
    old = readme_table(text)
    if not old:
        raise SystemExit(f"{path}: no settings table (a line {TABLE_HEAD.splitlines()[0]!r})")
    new = text.replace(old, settings_table())
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.settings_doc", description=__doc__)
    parser.add_argument("--write", metavar="README", help="replace the settings table in this file")
    args = parser.parse_args(argv)
    if args.write:
        changed = write_readme(Path(args.write))
        print(f"{args.write}: {'table updated' if changed else 'already up to date'}")
    else:
        sys.stdout.write(settings_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
