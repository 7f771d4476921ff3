#!/usr/bin/env bash
# The fire-path measurements behind the README's "Cold fires, warming and loss" tables:
# cold/hot by gap, what each warming half buys, the per-step breakdown, scheduled-fire
# accuracy and recovery under 5 % loss. Root; ~12 minutes; run it on a quiet machine
# (nothing else on the datapath's core). Every run is one `bench run` invocation (its
# backends interleaved fire by fire); results go to out/measure/.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-./target/release/bench}
OUT=${OUT:-out/measure}
mkdir -p "$OUT"
[ -x "$BENCH" ] || cargo build --release --locked -p quickdraw-bench
run() { # name, then bench run arguments
  local name=$1; shift
  echo "== $name: bench run $*"
  "$BENCH" run "$@" --out "$OUT/$name.json" --per-fire "$OUT/$name.jsonl" | tee "$OUT/$name.txt"
}
trap '"$BENCH" lab loss 0 >/dev/null 2>&1 || true; "$BENCH" lab down >/dev/null 2>&1 || true' EXIT
"$BENCH" lab up >/dev/null
# SKIP_GAPS=1 leaves out the longest run (about 4 minutes).
[ -n "${SKIP_GAPS:-}" ] || run gaps --gaps 2ms,20ms,1s --fires 300,300,40 --hdr-dir "$OUT/hdr"
for w in none send wire; do
  run "warming-$w" --warming "$w" --gaps 2ms,1s --fires 100,30
done
run steps --gap 20ms --fires 500 --profile-steps --backends af_xdp,floor
run scheduled --gap 20ms --fires 300 --scheduled --backends af_xdp,kernel
"$BENCH" lab loss 5
run loss5 --gap 20ms --fires 200 --backends af_xdp,kernel || echo "(loss run exited non-zero: see above)"
"$BENCH" lab loss 0
