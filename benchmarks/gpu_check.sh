#!/usr/bin/env bash
# One call on a lent GPU (an H100 or H200 with CuPy, PyTorch on CUDA, transformers and safetensors
# installed, no internet) that confirms miniclip's CuPy path and takes its first GPU figures:
#
#   1 machine    nvidia-smi; Python, NumPy, CuPy, PyTorch versions; what CuPy and PyTorch see
#   2 gpu-tests  python -m pytest -m gpu: every gpu-marked test (tests/test_gpu_commands.py runs each
#                command on the GPU beside the CPU)
#   3 bench      miniclip bench --device gpu --config gpu --batch-size 512, beside PyTorch on CUDA
#   4 cifar10    CIFAR-10's binary files rebuilt from DATA_DIR (started first, in the background)
#   5 train      miniclip train --device gpu (configuration gpu) on it, to its last epoch
#   6 eval       miniclip eval of that run: the report, its final accuracy
#
# Usage: bash benchmarks/gpu_check.sh DATA_DIR
#   DATA_DIR holds a copy of ../shared/data: cifar10-jpeg-q75.tar.xz and make_cifar10_bin.py (18 MB).
#   The device tool sends the working tree, not ../shared, so copy it into the git-ignored .devdata/:
#     mkdir -p .devdata && cp ../shared/data/cifar10-jpeg-q75.tar.xz ../shared/data/make_cifar10_bin.py .devdata/
#   then call the tool's run with
#     command: bash benchmarks/gpu_check.sh .devdata      carry: [".devdata"]      timeout_s: 600
#
# Each step runs under `timeout`, logs to its own file in $OUT (default ./gpu-check-out), and a failed
# step does not stop the next. The whole script keeps within GPU_CHECK_BUDGET seconds (default 540, nine
# minutes): training gets what the other steps leave. With EPOCHS unset, the epochs are the configuration's
# 30 if they fit that time at the speed step 3 measured, else as many as fit (the schedule is then
# complete, only shorter); EPOCHS=N asks for N. Training stopped by its time limit saves its checkpoint
# (SIGTERM works as Ctrl-C) and the step reads TIMEOUT.
#
# What comes back in $OUT: 1-machine.log ... 6-eval.log, summary.log and run/metrics.jsonl, eight files,
# the most the device tool returns; the checkpoint and plots are moved to the scratch folder unless
# GPU_CHECK_KEEP_RUN=1. Installs nothing: miniclip is imported from this tree (PYTHONPATH); only if that
# fails, `pip install --no-deps --no-build-isolation -e .`. Exit status: the number of steps that did not pass.

set -uo pipefail

if [ $# -ne 1 ]; then
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 64
fi
DATA=$(cd "$1" 2>/dev/null && pwd || echo "$1")  # absolute, before the cd below
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 70
OUT=${OUT:-$ROOT/gpu-check-out}
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-540}
FULL_EPOCHS=30  # the gpu configuration's
TRAIN_IMAGES=50000
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
START=$(date +%s)
mkdir -p "$OUT" "$WORK/status"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TQDM_MININTERVAL=10  # progress bars into a log: fewer redraws (a step that sets the postfix still draws)

left() { echo $((START + BUDGET - $(date +%s))); }

step() {  # step NUMBER NAME FUNCTION LIMIT: FUNCTION LIMIT, its output in $OUT/NUMBER-NAME.log, its status kept
    local number=$1 name=$2 function=$3 limit=$4 started rc result
    LOG="$OUT/$number-$name.log"
    started=$(date +%s)
    echo "[$number $name] started at $(date -u +%T) UTC, time limit ${limit}s" | tee "$LOG"
    "$function" "$limit" >>"$LOG" 2>&1
    rc=$?
    case $rc in
        0) result=PASS ;;
        124 | 137) result=TIMEOUT ;;
        *) result=FAIL ;;
    esac
    echo "$result $rc $(($(date +%s) - started))" >"$WORK/status/$number-$name"
    echo "[$number $name] $result (exit $rc) after $(($(date +%s) - started))s; log: $LOG" | tee -a "$LOG"
    return "$rc"
}

# -- 1: the machine --------------------------------------------------------------------------------

step_machine() {
    local ok=0
    uname -a
    timeout 30 nvidia-smi || { echo "nvidia-smi failed: no NVIDIA driver or GPU here"; ok=1; }
    if ! timeout 60 "$PY" -c "import miniclip.cli"; then
        echo "miniclip does not import from $ROOT: pip install --no-deps --no-build-isolation -e ."
        timeout 120 "$PY" -m pip install --no-deps --no-build-isolation -e . || ok=1
    fi
    timeout 120 "$PY" - <<'EOF' || ok=1
import importlib
import platform
import sys

print(f"python {platform.python_version()} at {sys.executable}")
for name in ("numpy", "PIL", "matplotlib", "tqdm", "regex", "pytest", "xdist", "torch", "transformers", "safetensors"):
    try:
        print(f"{name} {getattr(importlib.import_module(name), '__version__', '(no version)')}")
    except ImportError as exc:
        print(f"{name} MISSING ({exc})")
failed = False
try:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    print(f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
          f"{cupy.cuda.runtime.getDeviceCount()} GPU(s), using {props['name'].decode()}")
except Exception as exc:  # not installed, or no GPU: the check cannot run
    print(f"cupy: NO USABLE GPU ({type(exc).__name__}: {exc})")
    failed = True
try:
    import torch

    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}: {where}")
except ImportError:
    print("torch MISSING: bench has no PyTorch beside it")
from miniclip import backend

print(f"miniclip from {backend.__file__}")
sys.exit(1 if failed else 0)
EOF
    git -C "$ROOT" log -1 --format='commit %h %s' 2>/dev/null || echo "commit: unknown (no .git here)"
    return $ok
}

# -- 2: every gpu-marked test -----------------------------------------------------------------------

step_tests() {
    local options=(-m gpu -q -p no:cacheprovider -rs --durations=15) rc
    if "$PY" -c "import xdist" 2>/dev/null; then
        options+=(-n0)  # one process: the GPU is one device
    else
        options+=(-o "addopts=-ra --strict-markers")  # pyproject's addopts asks for pytest-xdist
    fi
    if "$PY" -c "import pytest_timeout" 2>/dev/null; then
        options+=(--timeout=150)  # one hung test fails alone, and the report still comes
    fi
    if ! "$PY" -c "from miniclip import backend; backend.gpu_available() or exit(1)"; then
        "$PY" -c "from miniclip import backend; backend._cupy()" 2>&1 | tail -n 1  # why, in one line
        echo "no usable GPU: every gpu-marked test would skip, so this step fails"
        return 3
    fi
    timeout -k 15 "$1" "$PY" -m pytest "${options[@]}"
    rc=$?
    [ "$rc" -eq 0 ] || return "$rc"
    tail -n 3 "$LOG" | grep -Eq '[0-9]+ passed' || { echo "no gpu-marked test passed"; return 5; }
}

# -- 3: bench, beside PyTorch on CUDA ------------------------------------------------------------

step_bench() {
    timeout -k 15 "$1" "$PY" -m miniclip bench --device gpu --config gpu --batch-size 512 || return $?
    if grep -q "PyTorch comparison skipped" "$LOG"; then
        echo "PyTorch ran nowhere beside it (see the line above): no comparison on CUDA"
        return 4
    fi
    grep -Eq '^PyTorch .*\(cuda, ' "$LOG" || { echo "PyTorch did not run on CUDA"; return 4; }
}

# -- 4: CIFAR-10 in its binary layout -------------------------------------------------------------

step_cifar() {
    local folder="$WORK/data/cifar-10-batches-bin" file
    if [ ! -f "$DATA/make_cifar10_bin.py" ] || [ ! -f "$DATA/cifar10-jpeg-q75.tar.xz" ]; then
        echo "$DATA must hold make_cifar10_bin.py and cifar10-jpeg-q75.tar.xz (a copy of ../shared/data)"
        return 2
    fi
    timeout -k 15 "$1" "$PY" "$DATA/make_cifar10_bin.py" "$WORK/data" || return $?
    for file in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        [ "$(stat -c %s "$folder/$file.bin" 2>/dev/null)" = 30730000 ] || { echo "$file.bin: not 30,730,000 bytes"; return 6; }
    done
    echo "CIFAR-10 (JPEG q75 copy) in $folder"
}

# -- 5: train the gpu configuration --------------------------------------------------------------

step_train() {
    local limit=$1 epochs=${EPOCHS:-} speed per_epoch started rc
    if [ -z "$epochs" ]; then
        speed=$(awk '/^miniclip \(gpu\)/ {print $3; exit}' "$OUT/3-bench.log" 2>/dev/null)
        if [ -n "$speed" ]; then
            # an epoch: 50,000 training images (×1.3 for the host's batches) and 20,000 evaluation forwards
            # (10,000 test images and their mirror images, a forward a third of a step), plus 40 s to start
            per_epoch=$(awk -v s="$speed" -v n="$TRAIN_IMAGES" 'BEGIN {print (1.3 * n + 20000 / 3) / s}')
            epochs=$(awk -v t="$limit" -v e="$per_epoch" -v full="$FULL_EPOCHS" \
                'BEGIN {n = int((t - 40) / e); print (n < 1 ? 1 : (n > full ? full : n))}')
            echo "bench: $speed images/s, so an epoch takes about ${per_epoch}s; ${FULL_EPOCHS} epochs about" \
                "$(awk -v e="$per_epoch" -v full="$FULL_EPOCHS" 'BEGIN {print int(e * full + 40)}')s;" \
                "${limit}s are left for training: $epochs epochs"
        else
            epochs=$FULL_EPOCHS
            echo "no speed from bench: the configuration's $epochs epochs, stopped by the time limit if need be"
        fi
    fi
    started=$(date +%s)
    timeout -k 30 "$limit" "$PY" -m miniclip train --device gpu --config gpu --data cifar10 \
        --data-dir "$WORK/data" --out "$OUT/run" --epochs "$epochs"
    rc=$?
    echo "wall time of miniclip train: $(($(date +%s) - started))s for $epochs epoch(s)"
    [ "$rc" -eq 124 ] && echo "stopped by the time limit: the checkpoint in $OUT/run holds the last whole step"
    return "$rc"
}

# -- 6: evaluate the run ------------------------------------------------------------------------

step_eval() {
    [ -f "$OUT/run/checkpoint.npz" ] || { echo "no checkpoint in $OUT/run: nothing to evaluate"; return 2; }
    timeout -k 15 "$1" "$PY" -m miniclip eval "$OUT/run" --device gpu --out "$WORK/eval"
}

# -- the run ----------------------------------------------------------------------------------------

echo "miniclip GPU check: $ROOT, data $DATA, logs in $OUT, scratch $WORK, budget ${BUDGET}s"
step 1 machine step_machine 150
(step 4 cifar10 step_cifar 180 >/dev/null) &  # on the CPU, while the tests run; its lines go to its log
cifar=$!
step 2 gpu-tests step_tests 210
wait "$cifar"  # done long before, normally; the benchmark runs alone
sed -n '1p;$p' "$OUT/4-cifar10.log"
step 3 bench step_bench 120
reserve=90  # for the evaluation and the summary
train_limit=$(($(left) - reserve))
if [ "$train_limit" -ge 60 ]; then
    step 5 train step_train "$train_limit"
else
    echo "[5 train] too little time left (${train_limit}s)" | tee "$OUT/5-train.log"
    echo "FAIL skipped 0" >"$WORK/status/5-train"
fi
eval_limit=$(($(left) - 15))
step 6 eval step_eval $((eval_limit < 30 ? 30 : (eval_limit > 180 ? 180 : eval_limit)))

if [ "${GPU_CHECK_KEEP_RUN:-0}" != 1 ] && [ -d "$OUT/run" ]; then  # the device tool returns 8 files at most
    mkdir -p "$WORK/run"
    find "$OUT/run" -mindepth 1 -maxdepth 1 ! -name metrics.jsonl -exec mv -t "$WORK/run" {} +
fi

# -- the summary --------------------------------------------------------------------------------------

{
    echo
    echo "miniclip GPU check, $(date -u '+%F %T') UTC: $(($(date +%s) - START))s of a ${BUDGET}s budget"
    grep -m1 -E '^cupy[ :]' "$OUT/1-machine.log" || echo "cupy: see 1-machine.log"
    printf '%-12s %-8s %5s %8s  %s\n' step result exit seconds log
    failed=0
    for number_name in 1-machine 2-gpu-tests 3-bench 4-cifar10 5-train 6-eval; do
        if [ -f "$WORK/status/$number_name" ]; then
            read -r result rc seconds <"$WORK/status/$number_name"
        else
            result=FAIL rc=none seconds=0
        fi
        [ "$result" = PASS ] || failed=$((failed + 1))
        printf '%-12s %-8s %5s %8s  %s\n' "$number_name" "$result" "$rc" "$seconds" "$number_name.log"
    done
    echo
    echo "gpu-marked tests: $(grep -E '[0-9]+ (passed|failed|error)' "$OUT/2-gpu-tests.log" | tail -n 1)"
    grep -E '^(gpu:|configuration|miniclip \(gpu\)|CuPy|PyTorch|step-0 loss|ratio)' "$OUT/3-bench.log"
    grep -E '^(bench:|no speed|wall time|stopped by)' "$OUT/5-train.log"
    if [ -f "$OUT/run/metrics.jsonl" ]; then
        "$PY" - "$OUT/run/metrics.jsonl" <<'EOF'
import json
import sys

metrics = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
for m in metrics:
    name, acc = next(iter(m["zero_shot"].items()))
    print(f"epoch {m['epoch']:2d}: loss {m['train_loss']:.3f}, zero-shot top-1 ({name}) {acc['top1']:.2%}, "
          f"{m['seconds']:.1f} s, {m['images_per_second']:.0f} images/s")
print(f"{len(metrics)} epoch(s) in {sum(m['seconds'] for m in metrics):.0f} s of steps (evaluation not counted)")
if metrics:
    for name, acc in metrics[-1]["zero_shot"].items():
        print(f"final zero-shot ({name}): top-1 {acc['top1']:.2%}, top-5 {acc['top5']:.2%}")
EOF
    fi
    echo "eval report (6-eval.log):"
    sed -n '2,40p' "$OUT/6-eval.log"
    echo "exit status: $failed (steps that did not pass)"
} 2>&1 | tee "$OUT/summary.log"
exit "$(awk '/^exit status:/ {print $3}' "$OUT/summary.log")"
