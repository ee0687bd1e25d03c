#!/usr/bin/env bash
# The GPU check, as one command for a lent GPU machine (no network there):
#   environment report, nvidia-smi sampling, `lstmq bench pipeline` (lstmq's own ceiling),
#   `lstmq bench end-to-end --model news` (a, b, c), `lstmq bench model` (the model alone),
#   the GPU-marked tests, a summary.
#
#   scripts/gpu_check.sh                  run everything; files under ${OUT:-./out/gpu}
#   scripts/gpu_check.sh --fetch-wheels   HERE, with PyPI: the wheels the GPU image lacks, into
#                                         out/gpu-wheels (carry that path to the GPU machine)
#
# Environment: DEVICE (cuda; cpu for a dry run), DOCS_SCALE (1; scales every document count),
# THREADS (torch CPU threads, unset: all), PYTHON (default .venv/bin/python, else python3),
# WHEELS (out/gpu-wheels), BUDGET_S (450: the steps stop early enough to write the summary).
# Every step has its own timeout; a failed step is recorded and the next one runs.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
WHEELS=${WHEELS:-$REPO/out/gpu-wheels}
WHEEL_PYTHON=${WHEEL_PYTHON:-3.12} # the GPU machine's python3 (the one with CUDA torch)

# What lstmq needs and the GPU machine's image does not hold, or holds possibly too old for
# celery (click >= 8.3.1) and pydantic (typing-extensions >= 4.16).
MISSING=(alembic amqp annotated-types billiard celery celery-redbeat click click-didyoumean click-plugins
  click-repl fastapi greenlet kombu mako opentelemetry-api prompt-toolkit psycopg psycopg-binary pydantic
  pydantic-core pydantic-settings python-dotenv redis sqlalchemy starlette tenacity typing-extensions
  typing-inspection tzlocal uvicorn vine wcwidth)
# Modules that lstmq, its bench and the tests import: what is missing is named before anything runs.
MODULES="torch celery kombu redbeat sqlalchemy alembic psycopg pydantic pydantic_settings fastapi uvicorn
  tokenizers safetensors click rich numpy PIL jinja2 prometheus_client redis pytest"

if [ -x .venv/bin/python ]; then PY=${PYTHON:-$REPO/.venv/bin/python}; else PY=${PYTHON:-python3}; fi

if [ "${1:-}" = "--fetch-wheels" ]; then
  # The versions this checkout's environment runs, as cp$WHEEL_PYTHON manylinux wheels.
  mkdir -p "$WHEELS"
  for name in "${MISSING[@]}"; do
    version=$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))") || exit 1
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$WHEELS" "$name==$version" || exit 1
  done
  du -sh "$WHEELS"
  exit 0
fi

DEVICE=${DEVICE:-cuda}
DOCS_SCALE=${DOCS_SCALE:-1}
BUDGET_S=${BUDGET_S:-450}
OUT=${OUT:-$REPO/out/gpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d)
STEPS=$TMP/steps.tsv
STARTED=$(date +%s)
SAMPLER=
: >"$STEPS"
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
export PYTHONUNBUFFERED=1 LSTMQ_HOME=$TMP/home # bench folders in $TMP, not in the checkout
unset LSTMQ_BROKER_URL LSTMQ_DATABASE_URL LSTMQ_MODEL_DIR

scaled() { awk -v n="$1" -v s="$DOCS_SCALE" 'BEGIN { v = int(n * s); print (v < 1 ? 1 : v) }'; }
now() { date +%s.%N; }
have_smi() { command -v nvidia-smi >/dev/null 2>&1; }

# record NAME RC START END COMMAND: one row of the summary
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$STEPS"; }

# step NAME LIMIT_S COMMAND...: runs with its own timeout (cut to what the budget has left),
# output to $OUT/NAME.log. timeout signals the whole process group: the bench's worker too.
step() {
  local name=$1 limit=$2 start rc left
  shift 2
  left=$((BUDGET_S - ($(date +%s) - STARTED) - 15))
  if [ "$left" -lt 20 ]; then
    record "$name" "skipped (budget spent)" "" "" "$*"
    return
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  echo "== $name (timeout ${limit}s): $*"
  start=$(now)
  timeout -k 15 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  [ "$rc" -eq 124 ] && rc="124 (timed out after ${limit}s)"
  record "$name" "$rc" "$start" "$(now)" "$*"
  tail -n 3 "$OUT/$name.log"
}

skip() { record "$1" "skipped ($2)" "" "" "$3"; }

# 1. environment
{
  echo "date: $(date -Is)  host: $(uname -n)  cores: $(nproc)  DEVICE=$DEVICE DOCS_SCALE=$DOCS_SCALE"
  if have_smi; then
    nvidia-smi -L
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  else
    echo "nvidia-smi: not found (no GPU sampling)"
  fi
  echo "python: $PY ($("$PY" -V 2>&1))"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
    'available', torch.cuda.is_available(),
    'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" 2>&1 ||
    echo "torch: cannot be imported by $PY"
} >"$OUT/env.txt" 2>&1

# 2. what lstmq needs: the wheels carried along, else pip's configured index
missing_modules() {
  PYTHONPATH=${PYTHONPATH:-} "$PY" -c "
import importlib.util, sys
print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))" $MODULES
}
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
lacking=$(missing_modules)
if [ -n "$lacking" ]; then
  SITE=$TMP/site
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    source_="the wheels in $WHEELS"
    install=("$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps --no-compile --no-cache-dir
      --target "$SITE" "${MISSING[@]}")
  else
    source_="pip's configured index (no wheels in $WHEELS: run scripts/gpu_check.sh --fetch-wheels where PyPI is reachable and carry out/gpu-wheels)"
    install=("$PY" -m pip install -q --no-deps --no-compile --no-cache-dir --retries 1 --timeout 15 --target "$SITE" "${MISSING[@]}")
  fi
  echo "missing modules: $lacking; installing from $source_" | tee -a "$OUT/env.txt"
  step install 120 "${install[@]}"
  export PYTHONPATH=$SITE:$PYTHONPATH
  lacking=$(missing_modules)
  cat "$OUT/install.log" >>"$OUT/env.txt" && rm -f "$OUT/install.log"
fi
CUDA_OK=$("$PY" -c "import torch; print(torch.cuda.is_available())" 2>/dev/null || echo False)
echo "missing modules: ${lacking:-none}; torch.cuda.is_available(): $CUDA_OK" | tee -a "$OUT/env.txt"

# 3. the sampler: one line per 200 ms until the script ends
if have_smi; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 200 >"$OUT/gpu_util.csv" 2>&1 &
  SAMPLER=$!
fi

threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
services=(--device "$DEVICE" --concurrency 4 --redis-url filesystem:// "${threads[@]}")
pipeline=("$PY" -m lstmq bench pipeline "${services[@]}" --docs "$(scaled 200000)"
  --database-url "sqlite:///$TMP/p.db")
news=("$PY" -m lstmq bench end-to-end "${services[@]}" --model news --docs "$(scaled 100000)"
  --single-docs "$(scaled 500)" --database-url "sqlite:///$TMP/b.db")
model=("$PY" -m lstmq bench model --models news --docs "$(scaled 100000)" --device "$DEVICE" "${threads[@]}")
tests=("$PY" -m pytest -q -p no:cacheprovider -m gpu tests/ml/test_cuda.py tests/ml/test_training.py)

why=
[ -n "$lacking" ] && why="missing: $lacking"
[ -z "$why" ] && [ "$DEVICE" = cuda ] && [ "$CUDA_OK" != True ] && why="torch sees no CUDA device"
if [ -n "$why" ]; then
  skip pipeline "$why" "${pipeline[*]}"
  skip news "$why" "${news[*]}"
  skip model "$why" "${model[*]}"
  skip tests "$why" "${tests[*]}"
else
  step pipeline 110 "${pipeline[@]}"
  step news 140 "${news[@]}"
  step model 60 "${model[@]}"
  step tests 80 "${tests[@]}"
fi

# 4. the summary: each step's exit code, wall time, GPU utilisation meanwhile, its bench lines
[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
SAMPLER=
"$PY" - "$STEPS" "$OUT" >"$OUT/summary.txt" <<'EOF'
import csv, sys
from datetime import datetime
from pathlib import Path

steps, out = Path(sys.argv[1]), Path(sys.argv[2])
samples = []  # (epoch seconds, utilisation %, memory MiB); nvidia-smi stamps local time
util = out / "gpu_util.csv"
for row in csv.reader(util.read_text().splitlines() if util.exists() else []):
    try:
        at = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
        samples.append((at, float(row[1].split()[0]), float(row[2].split()[0])))
    except (ValueError, IndexError):
        pass  # a header or an error line
print((out / "env.txt").read_text().rstrip(), end="\n\n")
for name, rc, start, end, command in csv.reader(steps.read_text().splitlines(), delimiter="\t"):
    print(f"== {name}: exit {rc}" + (f", {float(end) - float(start):.1f} s" if start else ""))
    print(f"   $ {command}")
    if start:
        window = [s for s in samples if float(start) <= s[0] <= float(end)]
        if window:
            used = [s[1] for s in window]
            print(f"   GPU utilisation: mean {sum(used) / len(used):.0f} %, max {max(used):.0f} %,"
                  f" memory max {max(s[2] for s in window):.0f} MiB ({len(window)} samples)")
        else:
            print("   GPU utilisation: no samples (nvidia-smi absent or silent)")
    log = out / f"{name}.log"
    if log.exists():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        print("\n".join("   | " + line for line in lines[-40:]))
    print()
EOF
cat "$OUT/summary.txt"
