"""Rules for the fake endpoint that judge like a crude but predictable model: by keywords.

A subgoal scores 5 on a sample whose text matches its pattern and 1 otherwise, so tests can compute
the expected coverage from the data themselves.
"""

from __future__ import annotations

import re

from goalcover.testing import ChatRequest, Reply

SAMPLE_BLOCK = re.compile(r'<sample id="([^"]*)">\n(.*)\n</sample>', re.DOTALL)


def sample_of(req: ChatRequest) -> tuple[str, str] | None:
    # Search the whole conversation: a repair turn asks again about the sample of the first user message.
    match = SAMPLE_BLOCK.search(req.text or "")
    return (match.group(1), match.group(2)) if match else None


def judged_subgoals(req: ChatRequest) -> list[str]:
    """The subgoal ids a judge request asks for: the batched schema's keys, or the one subgoal of a pair call."""
    schema = req.schema or {}
    props = schema.get("properties", {})
    if "score" in props:  # pair mode names its subgoal after the sample
        return re.findall(r"The subgoal to judge it against:\n(S\d+): ", req.text or "")[:1]
    return list(props)


def _judge(patterns: dict[str, str], verdict):
    """A judge rule: for each subgoal asked about, `verdict(subgoal_id, hit, text)` with `hit` whether the
    subgoal's regex matches the sample text; answers in the batched or the pair shape the request asks for."""
    compiled = {sid: re.compile(p, re.IGNORECASE) for sid, p in patterns.items()}

    def rule(req: ChatRequest):
        found = sample_of(req)
        if found is None or req.schema_name != "judgment":
            return None
        _, text = found
        verdicts = {sid: verdict(sid, bool(compiled[sid].search(text)), text) for sid in judged_subgoals(req)}
        if "score" in (req.schema or {}).get("properties", {}):
            return Reply.json(next(iter(verdicts.values())))
        return Reply.json(verdicts)

    return rule


def keyword_judge(patterns: dict[str, str], explain: dict[str, str] | None = None):
    """A rule: score 5 where the subgoal's regex matches the sample text, else 1."""

    def verdict(sid: str, hit: bool, text: str) -> dict:
        reason = (explain or {}).get(sid, f"the {sid} topic")
        return {"explanation": f"The sample {'covers' if hit else 'lacks'} {reason}.", "score": 5 if hit else 1}

    return _judge(patterns, verdict)

CONTRACT_PATTERNS = {
    "S1": r"terminat|suspend",
    "S2": r"liab|warrant|indemn",
    "S3": r"personal (data|information)|privacy",
    "S4": r"(change|modif)\w* (to )?(these|the|this) (terms|agreement)",
    "S5": r"arbitrat|dispute|governing law|class action",
}


TOPICS = {
    "termination of accounts": r"terminat|suspend",
    "liability and warranties": r"liab|warrant|indemn",
    "personal data": r"personal (data|information)|privacy",
    "dispute resolution": r"arbitrat|dispute|governing law|class action",
    "intellectual property and content licences": r"licen[cs]e|intellectual property|copyright|content",
}


def topic_of(text: str) -> str:
    for topic, pattern in TOPICS.items():
        if re.search(pattern, text, re.IGNORECASE):
            return topic
    return "general service terms"


def topical_judge(patterns: dict[str, str]):
    """Like keyword_judge, but a low score's explanation names what the sample is about instead, so the
    explanations of one subgoal's gaps fall into real clusters (one per topic)."""

    def verdict(sid: str, hit: bool, text: str) -> dict:
        if hit:
            return {"explanation": "The sample clearly teaches this subgoal.", "score": 5}
        topic = topic_of(text)
        return {
            "explanation": f"This clause is about {topic}; it never shows the capability, so a model would not learn it.",
            "score": 2 if topic != "general service terms" else 1,
        }

    return _judge(patterns, verdict)

TERMINATION_CLAUSES = [
    ("we may suspend or terminate your account at any time if you post spam or repeated unsolicited advertising",
     "They can close your account whenever they decide you are spamming."),
    ("if you share your login credentials with a third party we may terminate your access without notice",
     "Sharing your password lets them cut you off with no warning."),
    ("accounts with payments more than thirty days overdue will be suspended until the balance is settled",
     "Pay late by a month and your account is frozen until you pay."),
    ("use of cheats, exploits or automation software is grounds for permanent termination of the player account",
     "Cheating or using bots gets you banned for good."),
    ("upon termination all licenses granted to you end and you must delete any downloaded copies of the software",
     "Once your account ends you lose the right to use the software and must delete it."),
    ("we will give thirty days written notice before terminating a paid subscription for convenience and refund unused fees",
     "If they end a paid plan without cause, you get a month's notice and a refund."),
    ("you may terminate this agreement by deleting your account; sections on liability survive termination",
     "You can quit by deleting your account, but some rules still apply afterwards."),
    ("inactive accounts with no login for two years may be terminated and their content removed",
     "If you don't log in for two years they may shut the account and delete your stuff."),
    ("harassment of other members will result in immediate suspension pending review by our trust team",
     "Harassing people gets your account suspended while they investigate."),
    ("reselling tickets purchased through the service above face value may lead to termination of the account and cancelled orders",
     "Scalping tickets can get your account and orders cancelled."),
]


def synth_writer(duplicate_of: dict | None = None, off_target: int = 1):
    """A synthesizer: distinct alpaca candidates about account termination, plus (in its first batch) an
    exact copy of a dataset record and `off_target` candidates that miss the subgoal, so dedup and the
    judge each have something to drop."""
    calls = {"n": 0}

    def rule(req: ChatRequest):
        if req.schema_name != "synthetic_samples":
            return None
        size = int(re.search(r"Write (\d+) new samples", req.system).group(1))
        items = []
        for i in range(size):
            clause, summary = TERMINATION_CLAUSES[(calls["n"] * size + i) % len(TERMINATION_CLAUSES)]
            items.append({
                "aspect": clause.split(" ")[3],
                "difficulty": ["easy", "medium", "hard"][i % 3],
                "sample": {"instruction": "Summarize this contract clause in plain English.", "input": clause, "output": summary},
            })
        if calls["n"] == 0:
            for j in range(min(off_target, len(items))):
                items[-1 - j]["sample"] = {
                    "instruction": "Summarize this contract clause in plain English.",
                    "input": ["the weather widget shows forecasts for your town in celsius or fahrenheit",
                              "our newsletter arrives every friday with recipes and gardening tips"][j % 2],
                    "output": ["It shows the weather.", "You get recipes by email on Fridays."][j % 2],
                }
            if duplicate_of is not None:
                items[0]["sample"] = {k: duplicate_of[k] for k in ("instruction", "input", "output")}
        calls["n"] += 1
        return Reply.json({"candidates": items})

    return rule
