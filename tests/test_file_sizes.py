"""No module of the shipped engine, agent or app grows past MAX_LINES lines (issue 24): a newcomer reads
one job per file. A file that outgrows it is split by job, its public names re-exported from the old module.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tools", "agent", "ui")
MAX_LINES = 450


def too_long(root: Path = ROOT, limit: int = MAX_LINES) -> list[str]:
    """`path: N lines` for every .py file under FOLDERS of `root` with more than `limit` lines."""
    out = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                out.append(f"{path.relative_to(root)}: {lines} lines")
    return out


def test_no_module_is_over_the_limit():
    assert too_long() == []


def test_a_long_module_is_named(tmp_path):
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "ui" / "small.py").write_text("x = 1\n" * MAX_LINES)
    assert too_long(tmp_path) == [f"ui/big.py: {MAX_LINES + 1} lines"]
