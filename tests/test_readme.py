"""The README stays a short user's path (issue 24) and the docs' links stay right.

The README keeps what GoalCover does, the two commands at the top, the pipeline, the chat app and the
"where is X" map in at most ~3,000 words; long reference lives in `docs/*.md` and measured figures in
`evals/README.md`. Every relative link in those files must name a file that exists and, with `#anchor`,
a heading of that file (GitHub's heading slugs).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_WORDS = 3_100
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slugs(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of `markdown`: lower case, punctuation dropped, spaces to `-`.

    Headings inside fenced code blocks are skipped. Repeated headings get GitHub's `-1`, `-2` suffixes.
    """
    out: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6} (.+)", line)
        if fenced or not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        n, candidate = 0, slug
        while candidate in out:
            n += 1
            candidate = f"{slug}-{n}"
        out.add(candidate)
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """`file: target` for each relative link in `path` whose file or `#anchor` does not exist."""
    text = path.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s):, mailto: — not checked offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{path.relative_to(root)}: {target}")
        elif anchor and dest.suffix == ".md" and anchor not in slugs(dest.read_text(encoding="utf-8")):
            broken.append(f"{path.relative_to(root)}: {target} (no such heading)")
    return broken


def test_readme_is_short():
    words = len(README.read_text(encoding="utf-8").split())
    assert words <= MAX_WORDS, f"README.md has {words} words (at most {MAX_WORDS}): move reference to docs/"


def test_readme_keeps_the_users_path():
    text = README.read_text(encoding="utf-8")
    top = text[: text.index("## ")]
    assert "scripts/run.sh" in top and "scripts/test.sh" in top  # the two commands, at the top
    for heading in ("## The chat app", "## The pipeline", "## Layout: where is X"):
        assert heading in text, heading


@pytest.mark.parametrize(
    "path",
    [README, ROOT / "evals" / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_links_resolve(path):
    assert broken_links(path) == []


def test_broken_link_is_caught(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n[ok](#title) [gone](b.md) [bad](#nope) [web](https://x.org)\n")
    assert broken_links(tmp_path / "a.md", tmp_path) == ["a.md: b.md", "a.md: #nope (no such heading)"]
