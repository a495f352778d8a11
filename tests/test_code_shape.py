"""The code stays readable: no function in nstream/ over 60 lines (argument-parser builders excepted:
a long list of options reads best in one place)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nstream"
MAX_LINES = 60


def is_parser_builder(name: str) -> bool:
    return name.endswith("parser") or (name.startswith("add_") and name.endswith("arguments"))


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_parser_builder(node.name):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these: " + "; ".join(long)
