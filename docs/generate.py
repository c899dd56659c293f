"""Regenerate the generated parts of the docs from the code they describe.

    python docs/generate.py           # rewrite the generated blocks in place
    python docs/generate.py --check   # exit 1 when a block is out of date

Generated blocks sit between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``:

- ``schemes`` and ``scheme-args`` in docs/plan-format.md, from ``inittui.core.schemes.SCHEMES``;
- the key table in README.md, from ``inittui.tui.keys`` (its own markers).

``tests/test_docs.py`` runs the same functions and fails while a block differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN_FORMAT = ROOT / "docs" / "plan-format.md"
README = ROOT / "README.md"


def _dims(scheme) -> str:
    low, high = scheme.min_dims, scheme.max_dims
    if high is None:
        return "any" if low == 0 else f"{low}+"
    return str(low) if low == high else f"{low}-{high}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _value(value: object) -> str:
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`"


_KINDS = {float: "a finite number", int: "an integer", str: "a string"}


def scheme_table() -> str:
    """One row per scheme of the table: name, arguments, tensor dims, what it draws."""
    from inittui.core.schemes import SCHEMES

    lines = ["| scheme | arguments | dims | what it does |", "|---|---|---|---|"]
    for scheme in SCHEMES.values():
        args = ", ".join(f"`{arg.name}`" for arg in scheme.args) or "-"
        lines.append(f"| `{scheme.name}` | {args} | {_dims(scheme)} | {_cell(scheme.summary)} |")
    return "\n".join(lines) + "\n"


def scheme_args_table() -> str:
    """One row per scheme argument: default, allowed values, meaning."""
    from inittui.core.schemes import SCHEMES

    lines = ["| scheme | argument | default | allowed | meaning |", "|---|---|---|---|---|"]
    for scheme in SCHEMES.values():
        for arg in scheme.args:
            default = "required" if arg.required else _value(arg.default)
            if arg.choices:
                allowed = ", ".join(f"`{choice}`" for choice in arg.choices)
            else:
                allowed = _KINDS[arg.kind]
                if arg.describe_range():
                    allowed += f" {arg.describe_range()}"
            lines.append(
                f"| `{scheme.name}` | `{arg.name}` | {default} | {_cell(allowed)} "
                f"| {_cell(arg.doc)} |"
            )
    return "\n".join(lines) + "\n"


BLOCKS = {"schemes": scheme_table, "scheme-args": scheme_args_table}


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- generated: {name} -->\n", f"<!-- end: {name} -->\n"
    start = text.index(begin) + len(begin)
    stop = text.index(end, start)
    return text[:start] + body + text[stop:]


def read_block(text: str, name: str) -> str:
    begin, end = f"<!-- generated: {name} -->\n", f"<!-- end: {name} -->\n"
    start = text.index(begin) + len(begin)
    return text[start : text.index(end, start)]


def generated_files() -> dict[Path, str]:
    """Every generated file's text as it should be."""
    from inittui.tui.keys import readme_with_table

    plan_format = PLAN_FORMAT.read_text(encoding="utf-8")
    for name, make in BLOCKS.items():
        plan_format = replace_block(plan_format, name, make())
    readme = readme_with_table(README.read_text(encoding="utf-8"))
    return {PLAN_FORMAT: plan_format, README: readme}


def main(argv: list[str]) -> int:
    stale = [path for path, text in generated_files().items() if path.read_text("utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python docs/generate.py")
        return 1 if stale else 0
    for path, text in generated_files().items():
        if path in stale:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
