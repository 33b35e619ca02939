"""One folder holds a project's state: `chroma/`, `goalcover.sqlite`, `exports/` (and reports).

Deleting the folder resets the project; nothing outside it holds project state.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.settings import Settings, load_settings
from goalcover.tools.core.store import Store

DB_NAME = "goalcover.sqlite"


class Workspace:
    """One project's folder: settings, the SQLite store, the Chroma index, exports/ and reports/. Raises BadInput when the path is a file."""
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.root = self.settings.workspace.expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"--workspace {self.root}: exists and is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, workspace: Path | str | None = None, **overrides) -> "Workspace":
        """Open (creating) the workspace at `workspace` (default: settings), with setting overrides."""
        return cls(load_settings(workspace=workspace, **overrides))

    @cached_property
    def store(self) -> Store:
        """The SQLite store, opened on first use."""
        return Store(self.root / DB_NAME)

    @cached_property
    def index(self):
        """The Chroma index, opened on first use (Chroma and the embedder take seconds to import); completes an ingest that was killed after its commit."""
        # Imported late: Chroma and the embedder take seconds to import, and many commands need neither.
        from goalcover.tools.core.lock import try_writing
        from goalcover.tools.data.index import Index
        from goalcover.tools.data.staging import finish_pending_ingest

        index = Index(self.root, self.settings.chroma_url, self.settings.embed_batch_size)
        with try_writing(self, "ingest") as free:  # when another process is writing, it will complete it
            if free:
                finish_pending_ingest(self.store, index)  # an ingest killed after its commit: apply it now
        return index

    @property
    def exports_dir(self) -> Path:
        """WORKSPACE/exports (created)."""
        path = self.root / "exports"
        path.mkdir(exist_ok=True)
        return path

    @property
    def reports_dir(self) -> Path:
        """WORKSPACE/reports (created)."""
        path = self.root / "reports"
        path.mkdir(exist_ok=True)
        return path

    def close(self) -> None:
        """Close the store's connections."""
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
