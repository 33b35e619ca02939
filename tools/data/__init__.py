"""The dataset path: a user's file into the workspace and the index, and back out again.

Entry points: `ingest.ingest_file` (file -> samples + Chroma index), `ingest.describe` / `ingest.search`,
`export.export` (filtered and augmented dataset in the user's own shape and file type).

- `readers` — files and containers (compressed, sharded, save_to_disk, ...) into a stream of raw records.
  Format families one a module: `read_json` (JSON Lines, JSON arrays), `read_csv` (CSV/TSV), `read_arrow`
  (Parquet, save_to_disk); `sources` — the shared record/layout shapes and how a path is classified and opened.
- `records` — raw records into `Sample`s (chat / instruction / text shapes), refusing broken ones by place.
  `record_text` — the record shapes (one pydantic model per format) and the text the judge and embedder read.
- `ingest` — the ingest flow into a workspace, atomic and resumable; describing and searching the dataset.
- `staging` — the last step of an atomic ingest: applying a committed ingest to the index.
- `index` — the Chroma collection of samples (vectors + filterable metadata).
- `embeddings` — sentence embeddings offline (all-MiniLM-L6-v2): chooses the backend, embeds; backends in
  `embed_torch` (the model's home, settings, PyTorch) and `embed_onnx` (ONNX export, onnxruntime, OpenVINO).
- `vectors` — embeddings of other texts, cached by content hash.
- `values` — record values every store can hold, checked and encoded losslessly.
- `export`, `exports_folder` — writing the dataset back; the workspace's `exports/` folder rule.
"""
