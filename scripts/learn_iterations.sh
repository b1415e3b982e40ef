#!/usr/bin/env bash
# Batch retraining from logged episodes, YAY Robot style, end to end (`make learn-iterations`):
#
#   round 0: collect rule-based demonstrations -> train policy-0 -> evaluate
#   round k: collect with policy-(k-1) while an operator corrects it -> retrain from it (--init,
#            a share of every batch from the correction samples) -> evaluate policy-k
#
# Settings (environment): OUT (runs/learn), ENVS (all), EPISODES per env or scenario per collection (10),
# EPOCHS (25) and FINETUNE_EPOCHS (10), EVAL episodes per env or scenario (10), ROUNDS (2), OPERATOR (sim; none without a suite),
# CORRECTION_SHARE (0.1), PY (.venv/bin/python, else python3).
# SUITE (standard): collect the correction rounds on that learning-benchmark suite's scenarios with the
# simulated operator correcting, and measure autonomous success on fresh seeds of its scenarios, judged
# with the operator's hidden wishes. SUITE= (empty) collects on the benchmark envs instead.
# About 35 min on 2 CPU cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-runs/learn}
ENVS=${ENVS:-all}
EPISODES=${EPISODES:-10}
EPOCHS=${EPOCHS:-25}
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-10}
EVAL=${EVAL:-10}
ROUNDS=${ROUNDS:-2}
CORRECTION_SHARE=${CORRECTION_SHARE:-0.1}
SUITE=${SUITE-standard}
OPERATOR=${OPERATOR:-$( [ -n "$SUITE" ] && echo sim || echo none )}  # the benchmark envs have no simulated operator
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

corrigo() { echo "+ corrigo $*" >&2; "$PY" -m agent.cli "$@"; }
evaluate() {  # policy dir, tag
  corrigo policy-eval --policy "learned:$1" --env "$ENVS" --episodes "$EVAL" --start-seed 1000 --json "$OUT/eval-$2.json"
  corrigo policy-eval --policy "learned:$1" --env "$ENVS" --episodes "$EVAL" --start-seed 5000 --phrasings heldout \
    --json "$OUT/eval-$2-heldout.json"
  if [ -n "$SUITE" ]; then  # no corrections: the operator only watches, to judge its hidden wishes
    corrigo policy-eval --policy "learned:$1" --suite "$SUITE" --episodes "$EVAL" --start-seed 5000 --json "$OUT/eval-$2-suite.json"
  fi
}

if [ -e "$OUT" ]; then echo "learn_iterations: $OUT exists; remove it or set OUT=..." >&2; exit 2; fi
mkdir -p "$OUT"
t0=$SECONDS
echo "== round 0: demonstrations -> policy-0" >&2
corrigo collect --policy rule_based --env "$ENVS" --episodes "$EPISODES" --start-seed 0 --out "$OUT/demos"
corrigo train --data "$OUT/demos" --out "$OUT/policy-0" --epochs "$EPOCHS"
evaluate "$OUT/policy-0" 0

data=("$OUT/demos")
for k in $(seq 1 "$ROUNDS"); do
  prev="$OUT/policy-$((k - 1))"
  echo "== round $k: collect with policy-$((k - 1)) (operator: $OPERATOR) -> retrain -> policy-$k" >&2
  if [ -n "$SUITE" ]; then
    corrigo collect --policy "learned:$prev" --suite "$SUITE" --episodes "$EPISODES" --start-seed $((100 * k)) \
      --operator "$OPERATOR" --out "$OUT/rollouts-$k"
  else
    corrigo collect --policy "learned:$prev" --env "$ENVS" --episodes "$EPISODES" --start-seed $((100 * k)) \
      --operator "$OPERATOR" --out "$OUT/rollouts-$k"
  fi
  data+=("$OUT/rollouts-$k")
  corrigo train --data "${data[@]}" --init "$prev" --out "$OUT/policy-$k" --epochs "$FINETUNE_EPOCHS" \
    --correction-share "$CORRECTION_SHARE" --seed "$k"
  evaluate "$OUT/policy-$k" "$k"
done

echo "== success rates after each round, $((SECONDS - t0)) s" >&2
corrigo learn-report --out "$OUT"
