"""The chat app refuses an upload over GOALCOVER_UPLOAD_MAX_MB before copying or reading it (issue 27: one
user's file must not take the server down), and takes one under it."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from goalcover.tools.core.workspace import Workspace
from goalcover.ui.webchat import WebChat


class Said:
    """Stands in for the app's output: keeps what would be shown."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def error(self, text: str, *args) -> None:
        self.errors.append(text)


def test_an_upload_over_the_cap_is_refused_before_it_is_read(tmp_path):
    upload = tmp_path / "browser-tmp-file"
    upload.write_text("".join(json.dumps({"instruction": f"Task {i}", "output": "Done." * 40}) + "\n" for i in range(1000)))
    chat = WebChat(tmp_path / "ws")
    chat.ws, chat.out = Workspace.open(tmp_path / "ws", upload_max_mb=0.1), Said()
    read = []
    chat.ingest = lambda path, mode=None: read.append(path)  # would read the file
    try:
        asyncio.run(chat.ingest_upload(SimpleNamespace(name="big.jsonl", path=str(upload))))
    finally:
        chat.ws.close()
    assert read == [] and not (tmp_path / "ws" / "uploads" / "big.jsonl").exists()
    assert chat.out.errors == [
        "big.jsonl was not ingested: it is 0.2 MB, over this server's limit of 0.1 MB for an upload "
        "(GOALCOVER_UPLOAD_MAX_MB). Ingest it with the CLI instead."
    ]


def test_an_upload_under_the_cap_goes_to_ingest(tmp_path):
    upload = tmp_path / "browser-tmp-file"
    upload.write_text(json.dumps({"instruction": "Task", "output": "Done."}) + "\n")
    chat = WebChat(tmp_path / "ws")
    chat.ws, chat.out = Workspace.open(tmp_path / "ws", upload_max_mb=1), Said()
    read = []

    async def ingest(path, mode=None):
        read.append(path)
        return True

    chat.ingest = ingest
    try:
        asyncio.run(chat.ingest_upload(SimpleNamespace(name="small.jsonl", path=str(upload))))
    finally:
        chat.ws.close()
    assert read == [tmp_path / "ws" / "uploads" / "small.jsonl"] and chat.out.errors == []
