"""Every public function, class and method in the shipped packages carries a docstring (issue 24): counted
with `ast`, so a new definition without one fails here, naming it.

Public: a name without a leading underscore, at module level or in a public class (not nested in a
function). `FOLDERS` are the packages held to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tools", "agent", "ui", "evals", "testing")


def missing_docstrings(folder: str, root: Path = ROOT) -> list[str]:
    """`path:line name` of every public definition under `root / folder` without a docstring."""
    missing = []
    for path in sorted((root / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def walk(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                if child.name.startswith("_"):
                    continue  # private, and so is everything inside it
                if any(isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter") for d in getattr(child, "decorator_list", [])):
                    continue  # a property's setter: the getter carries the docstring
                if ast.get_docstring(child) is None:
                    missing.append(f"{path.relative_to(root).as_posix()}:{child.lineno} {prefix}{child.name}")
                if isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")

        walk(tree, "")
    return missing


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_public_definition_has_a_docstring(folder):
    assert missing_docstrings(folder) == []


def test_the_count_sees_a_missing_docstring(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        'def f():\n    pass\n\ndef _g():\n    pass\n\nclass C:\n    """C."""\n    def m(self):\n        pass\n'
        'class _P:\n    def m(self):\n        pass\n'
    )
    assert missing_docstrings("pkg", tmp_path) == ["pkg/m.py:1 f", "pkg/m.py:9 C.m"]
