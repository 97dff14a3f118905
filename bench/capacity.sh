#!/usr/bin/env bash
# Capacity sweep, side by side: VoxDialog remote mode, VoxDialog local mode and (when its venv
# is given) Pipecat 1.14, driven by the same load generator (../shared/bench) in one run.
# Writes one JSON line per level to bench/results/capacity_<label>.jsonl and prints the tables.
#
#   bash bench/capacity.sh                                   # default levels, 30 s each
#   REMOTE_LEVELS=1,50,100,150 LOCAL_LEVELS=1,5,10,15 DUR=40 bash bench/capacity.sh
#   PIPECAT_PY=/path/to/venv/bin/python bash bench/capacity.sh   # adds the peer's sweep
#     (that venv: python3 -m venv v && v/bin/pip install -r ../shared/bench/requirements.txt)
set -u
cd "$(dirname "$0")/.."
SHARED=${SHARED_BENCH:-../shared/bench}
[ -d "$SHARED" ] || { echo "capacity: $SHARED not found (the shared load generator)" >&2; exit 2; }
DUR=${DUR:-30}
RESULTS=bench/results
STAMP=$(date -u +%Y-%m-%dT%H:%MZ)
REV=$(git rev-parse --short HEAD)
export LOADGEN_ARGS=${LOADGEN_ARGS:-"--collapse-noresp 0.5"}

run() {  # label, then the environment and arguments of run_vox_capacity.sh
  local label=$1
  shift
  echo "## $label ($STAMP, $REV, $(nproc) cores)"
  env "$@" OUT="$RESULTS/capacity_$label.jsonl" LABEL="voxdialog $label $REV" \
    bash "$SHARED/run_vox_capacity.sh" "${LEVELS}" "$DUR" | grep -E '^\||^#'
}

LEVELS=${REMOTE_LEVELS:-1,50,100,150} run remote MODE=remote STOP_SECS=0.2
LEVELS=${LOCAL_LEVELS:-1,5,10,15} run local MODE=local STOP_SECS=0.5
if [ -n "${PIPECAT_PY:-}" ]; then
  echo "## pipecat ($STAMP, $(nproc) cores)"
  PY=$PIPECAT_PY OUT="$RESULTS/capacity_pipecat.jsonl" \
    bash "$SHARED/run_pipecat_capacity.sh" "${PIPECAT_LEVELS:-1,10,20,25}" "$DUR" | grep -E '^\||^#'
else
  echo "## pipecat: PIPECAT_PY not set; its figures from $SHARED/README.md are quoted in" \
    "bench/results/capacity.md"
fi
