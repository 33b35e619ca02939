"""The OpenAI Files and Batch APIs, faked: enough of ``/v1/files`` and ``/v1/batches`` for the ``openai``
SDK's ``files.create``/``files.content``/``batches.create``/``retrieve``/``list``/``cancel`` to run end to end.

A batch answers every line of its input file through the *same* rules and default replies as a live
``/v1/chat/completions`` request (``FakeOpenAIApp.completion_for``), so a rule written for the live judge
judges batch lines too. Behaviour (``BatchBehaviour``): the batch is ``in_progress`` for ``delay_s``
seconds (its ``request_counts.completed`` rising with time), then ``completed``; ``fail_custom_ids`` and
``fail_every`` put lines in the error file instead of the output file; ``expire`` ends the batch
``expired`` after answering only the first ``expire_after`` lines (the rest go to the error file with
code ``batch_expired``, as OpenAI does).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_types import ChatRequest

if TYPE_CHECKING:
    from .fake_openai import FakeOpenAIApp

__all__ = ["BatchBehaviour", "FakeBatches"]


class BatchBehaviour(BaseModel):
    """How the fake's batches behave (change it at any time; a batch reads it when it finishes)."""

    delay_s: float = Field(0.0, ge=0, description="seconds a batch stays in_progress before it completes")
    fail_custom_ids: list[str] = Field([], description="lines with these custom_ids go to the error file")
    fail_every: int = Field(0, ge=0, description="every Nth line (1-based) fails; 0: none")
    expire: bool = Field(False, description="the batch ends `expired` after `expire_after` lines")
    expire_after: int = Field(0, ge=0)


@dataclass
class _Batch:
    body: dict[str, Any]
    lines: list[dict[str, Any]]
    created: float
    finished: bool = False


@dataclass
class FakeBatches:
    """Files and batches held in memory, with counters: `files` (uploads), `batches` (created), `lines`
    (batch lines answered), and `requests` (the ChatRequest of every batch line answered)."""

    app: "FakeOpenAIApp"
    behaviour: BatchBehaviour = field(default_factory=BatchBehaviour)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, _Batch] = field(default_factory=dict)
    requests: list[ChatRequest] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"files": 0, "batches": 0, "lines": 0, "cancels": 0})
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def configure(self, **changes: Any) -> BatchBehaviour:
        """Change some fields of the behaviour (``configure(delay_s=2, fail_every=5)``)."""
        self.behaviour = BatchBehaviour.model_validate({**self.behaviour.model_dump(), **changes})
        return self.behaviour

    def routes(self) -> list[Route]:
        """The Starlette routes, under /v1 and bare (as the chat routes are)."""
        routes = []
        for prefix in ("/v1", ""):
            routes += [
                Route(f"{prefix}/files", self.upload, methods=["POST"]),
                Route(f"{prefix}/files/{{file_id}}", self.file_info, methods=["GET"]),
                Route(f"{prefix}/files/{{file_id}}/content", self.file_content, methods=["GET"]),
                Route(f"{prefix}/batches", self.create, methods=["POST"]),
                Route(f"{prefix}/batches", self.list_batches, methods=["GET"]),
                Route(f"{prefix}/batches/{{batch_id}}", self.retrieve, methods=["GET"]),
                Route(f"{prefix}/batches/{{batch_id}}/cancel", self.cancel, methods=["POST"]),
            ]
        return routes

    # ------------------------------------------------------------------ files
    def _store_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-fake{next(self._ids):06d}"
        self.files[file_id] = {
            "id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed",
        }
        self.contents[file_id] = data
        return self.files[file_id]

    async def upload(self, request: Request) -> Response:
        """POST /v1/files: store a multipart `file` (its `purpose`, default batch); the file object, 400 without one."""
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "a multipart 'file' field is required")
        data = await upload.read()
        self.counts["files"] += 1
        return JSONResponse(self._store_file(data, upload.filename or "upload.jsonl", str(form.get("purpose") or "batch")))

    async def file_info(self, request: Request) -> Response:
        """GET /v1/files/{file_id}: the file object, 404 when unknown."""
        found = self.files.get(request.path_params["file_id"])
        return JSONResponse(found) if found else _error(404, "no such file")

    async def file_content(self, request: Request) -> Response:
        """GET /v1/files/{file_id}/content: the stored bytes (input, output or error JSONL), 404 when unknown."""
        data = self.contents.get(request.path_params["file_id"])
        return Response(data, media_type="application/octet-stream") if data is not None else _error(404, "no such file")

    # ---------------------------------------------------------------- batches
    async def create(self, request: Request) -> Response:
        """POST /v1/batches: a batch over an uploaded JSONL input file; 400 for an unknown file."""
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.contents:
            return _error(400, f"input_file_id {file_id!r} does not exist")
        try:
            lines = [json.loads(line) for line in self.contents[file_id].decode().splitlines() if line.strip()]
        except ValueError as exc:
            return _error(400, f"the input file is not JSONL: {exc}")
        if len({line.get("custom_id") for line in lines}) != len(lines):
            return _error(400, "custom_id values must be unique within a batch")
        batch_id = f"batch_fake{next(self._ids):06d}"
        now = int(time.time())
        self.batches[batch_id] = _Batch(
            body={
                "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                "input_file_id": file_id, "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress", "output_file_id": None, "error_file_id": None, "created_at": now,
                "in_progress_at": now, "expires_at": now + 86400, "completed_at": None, "expired_at": None,
                "cancelled_at": None, "metadata": body.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            },
            lines=lines, created=time.monotonic(),
        )
        self.counts["batches"] += 1
        return JSONResponse(self.batches[batch_id].body)

    async def list_batches(self, request: Request) -> Response:
        """Newest first, one page (``limit``, default 20; ``after`` a batch id), as the API pages them."""
        limit = int(request.query_params.get("limit", 20))
        ids = sorted(self.batches, reverse=True)
        after = request.query_params.get("after")
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        page = [self.batches[i].body for i in ids[:limit]]
        return JSONResponse({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                             "last_id": page[-1]["id"] if page else None, "has_more": len(ids) > limit})

    async def retrieve(self, request: Request) -> Response:
        """GET /v1/batches/{batch_id}: the batch object: progress grows with time, finished after `delay_s`
        (or when cancelling); 404 when unknown."""
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "no such batch")
        if not batch.finished:
            elapsed = time.monotonic() - batch.created
            if elapsed >= self.behaviour.delay_s or batch.body["status"] == "cancelling":
                await self._finish(batch)
            else:
                total = len(batch.lines)
                batch.body["request_counts"]["completed"] = int(total * elapsed / self.behaviour.delay_s)
        return JSONResponse(batch.body)

    async def cancel(self, request: Request) -> Response:
        """POST /v1/batches/{batch_id}/cancel: cancel the batch (counted in `counts["cancels"]`); 404 when unknown."""
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "no such batch")
        self.counts["cancels"] += 1
        if not batch.finished:
            batch.body["status"] = "cancelling"
        return JSONResponse(batch.body)

    async def _finish(self, batch: _Batch) -> None:
        """Answer the lines (all, or the processed part of a cancelled or expired batch); write the files."""
        b = self.behaviour
        cancelled = batch.body["status"] == "cancelling"
        if cancelled:
            done = batch.body["request_counts"]["completed"]
        else:
            done = min(b.expire_after, len(batch.lines)) if b.expire else len(batch.lines)
        output, errors = [], []
        for number, line in enumerate(batch.lines, 1):
            custom_id = line.get("custom_id")
            request_id = f"req_fake{next(self._ids):06d}"
            if number > done:
                code = "batch_cancelled" if cancelled else "batch_expired"
                errors.append({"id": f"batch_req_{request_id}", "custom_id": custom_id, "response": None,
                               "error": {"code": code, "message": f"This request could not be executed before the batch was {code[6:]}."}})
                continue
            if custom_id in b.fail_custom_ids or (b.fail_every and number % b.fail_every == 0):
                errors.append({"id": f"batch_req_{request_id}", "custom_id": custom_id,
                               "response": {"status_code": 500, "request_id": request_id,
                                            "body": {"error": {"message": "Injected failed line.", "type": "server_error"}}},
                               "error": None})
                continue
            self.requests.append(ChatRequest(line.get("body") or {}))
            self.counts["lines"] += 1
            status, body = await self.app.completion_for(line.get("body") or {})
            entry = {"id": f"batch_req_{request_id}", "custom_id": custom_id,
                     "response": {"status_code": status, "request_id": request_id, "body": body}, "error": None}
            (output if status == 200 else errors).append(entry)
        name = batch.body["id"]
        if output:
            batch.body["output_file_id"] = self._store_file(_jsonl(output), f"{name}_output.jsonl", "batch_output")["id"]
        if errors:
            batch.body["error_file_id"] = self._store_file(_jsonl(errors), f"{name}_error.jsonl", "batch_output")["id"]
        now = int(time.time())
        status = "cancelled" if cancelled else "expired" if b.expire else "completed"
        batch.body.update(status=status, **{f"{status}_at": now})
        batch.body["request_counts"] = {"total": len(batch.lines), "completed": len(output), "failed": len(errors)}
        batch.finished = True


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
                        status_code=status)
