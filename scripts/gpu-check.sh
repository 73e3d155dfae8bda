#!/usr/bin/env bash
# Everything that needs a GPU, in one call on one H100/H200: the source tree runs uninstalled (PYTHONPATH=.) with
# the machine's own torch/triton/transformers. Each stage has its own time limit and the next one runs whatever
# the last did; logs and tidy benchmark rows go to $OUT (the device tool's folder) or ./gpu-check/.
#   bash scripts/gpu-check.sh            # all stages (about 8 minutes on an H200)
#   STAGES="tests kernels" bash scripts/gpu-check.sh
# The sweep stage runs the 4-cell grid shipped in obliviate/recipes/grids/gpu-check.toml (world, tiny model,
# pretraining, GA/NPO × 2 seeds, one evaluation) into /tmp/gpu-sweep; a second call skips its finished cells.
# Carried wheels in .whl/ (e.g. liger-kernel for the Liger column) are installed to /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out"
results="$out/results.jsonl"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
stages="${STAGES:-tests kernels step eval sweep engine}"
py=python3

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, record its status
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=15 "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$out/$name.log"
    echo "=== $name: exit $rc after $((SECONDS - t0))s" | tee -a "$out/status.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
  $py -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__,
'transformers', transformers.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} >"$out/status.txt" 2>&1
cat "$out/status.txt"
for s in $stages; do
    case $s in
        tests)   stage tests 120 $py -m pytest -q -p no:cacheprovider tests/kernels ;;
        kernels) stage kernels 130 $py -m obliviate.cli.main bench kernels --shapes 0.5b,7b --sizes 2048,8192,16384 \
                     --results "$results" --profile /tmp/prof ;;
        step)    stage step 100 $py -m obliviate.cli.main bench step --shape 7b --results "$results" ;;
        eval)    stage eval 110 $py -m obliviate.cli.main bench eval --size gpu --providers hf --repeats 1 --probes 500 \
                     --results "$results" ;;
        sweep)   stage sweep 180 bash -c "$py -m obliviate.cli.main sweep obliviate/recipes/grids/gpu-check.toml \
                     --out /tmp/gpu-sweep --workers 1 --no-progress \
                     && cp /tmp/gpu-sweep/results.jsonl $out/sweep.jsonl \
                     && $py -m obliviate.cli.main report /tmp/gpu-sweep --rows method --cols split" ;;
        engine)  stage engine 100 $py -m pytest -q -p no:cacheprovider -x tests/train tests/cli ;;
        *) echo "unknown stage $s" ;;
    esac
done
[ -f "$results" ] && $py -m obliviate.cli.main bench summary "$results" | tee "$out/summary.txt"
cat "$out/status.txt"
