"""The last step of an atomic ingest: applying a committed ingest to the index.

`dataset.ingest_file` stages vectors in a `samples-staging` collection and rows in SQLite, then swaps the
rows in with one transaction that also records INGEST_PENDING. This step brings the index in line; it is
idempotent, so `Workspace.index` runs it as it opens and a kill anywhere here is completed next time.
(Its own module so that the workspace can call it without importing the dataset module.)
"""

from __future__ import annotations

from goalcover.tools.data.index import SAMPLES, STAGING, Index
from goalcover.tools.core.store import INGEST_PENDING, Store


def finish_pending_ingest(store: Store, index: Index) -> None:
    """Apply a committed ingest to the index, if one is pending.

    After a --replace (or into an empty index) the staging collection is renamed into place, O(1);
    otherwise removed ids are deleted and the staged vectors copied in. The staging collection is dropped
    only as the last index step, so while it exists the step has not finished and redoing it is safe."""
    pending = store.get_meta(INGEST_PENDING)
    if pending is None:
        return
    staged = STAGING in index.names()
    if staged and (pending.get("reset") or index.count() == 0):
        index.reset()
        index.rename(STAGING, SAMPLES)
    else:
        while ids := store.removed_ids():
            index.delete(ids)
            store.forget_removed(ids)
        index.move(STAGING)
    store.finish_ingest()
