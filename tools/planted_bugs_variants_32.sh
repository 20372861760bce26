#!/bin/bash
# Issue 32: 25 further bugs of the audit's kinds (docs/contributing/testing.md, "Variants"), planted one at a time
# in a scratch copy of HEAD; for each, the module's own test folder and tests/audit run without Ray (-m "not ray", -x)
# and its first failing test is printed. Every row should print a FAILED line. ONLY="name ..." runs some of them.
# Usage: tools/planted_bugs_variants_32.sh   (from the repository root; PY=python to use another interpreter)
set -u
REPO=$(pwd)
PY=${PY:-$REPO/.venv/bin/python}
SCRATCH=$(mktemp -d /tmp/planted-variants-32.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
cd $REPO && git archive HEAD | tar -x -C "$SCRATCH"
cd "$SCRATCH"
export RAY_USAGE_STATS_ENABLED=0
plant() {  # name file old new tests...
  name=$1; file=$2; old=$3; new=$4; shift 4
  cp "$file" "$file.orig"
  $PY - "$file" "$old" "$new" <<'PYEOF' || { echo "=== $name: PLANT FAILED"; mv "$file.orig" "$file"; return; }
import sys; p, old, new = sys.argv[1:]; s = open(p).read(); assert s.count(old) == 1, (p, old, s.count(old)); open(p, "w").write(s.replace(old, new))
PYEOF
  echo "=== $name: $file"
  timeout 900 $PY -m pytest -q -p no:cacheprovider -x -m "not ray" -rf "$@" 2>&1 | grep -E "^FAILED|^ERROR|[0-9]+ (passed|failed)" | cut -c1-200
  mv "$file.orig" "$file"
}
A=tests/audit
only=${ONLY:-}
run() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]] && plant "$@"; }
# measurement key / bundle
run key_without_threads bench/sweep/tasks/measurement.py '"device": kind, "threads": measure_threads(payload)}' '"device": kind}' tests/sweep/tasks $A
run bundle_no_gpu bench/sweep/tasks/measurement.py '    if kind == "cuda":
        bundle["GPU"] = 1' '    if kind == "gpu":
        bundle["GPU"] = 1' tests/sweep/tasks $A
# storage
run measurements_not_downloaded bench/sweep/folder/storage.py '    storage.pull(layout.MEASUREMENTS, sweep_dir / layout.MEASUREMENTS)
    return sweep_dir' '    return sweep_dir' tests/sweep/folder $A
run userinfo_first_at bench/sweep/folder/storage.py 'userinfo, host = rest.rsplit("@", 1)' 'userinfo, host = rest.split("@", 1)' tests/sweep/folder $A
run address_user_not_password bench/sweep/folder/storage.py 'secret = userinfo.partition(":")[2] or userinfo' 'secret = userinfo.partition(":")[0]' tests/sweep/folder $A
run no_session_token bench/sweep/folder/storage.py '"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", ' '"AWS_SECRET_ACCESS_KEY", ' tests/sweep/folder $A
# protocols
run applies_to_all bench/sweep/spec/protocols.py 'return self.name not in IFA_ONLY or cfg.model.head.name == "ifa"' 'return True' tests/sweep/spec $A
run ms_flip_single_scale bench/sweep/spec/protocols.py 'if len(cfg.eval.scales) > 1 else' 'if len(cfg.eval.scales) >= 1 else' tests/sweep/spec $A
run duplicate_names bench/sweep/spec/protocols.py '        if any(p.name == name for p in out):' '        if False:' tests/sweep/spec $A
# intervals
run alpha_not_halved bench/engine/evaluation/bootstrap.py 'alpha = (100.0 - level) / 2.0' 'alpha = 100.0 - level' tests/engine/evaluation tests/reports $A
run failed_trials_counted reports/regression/intervals.py 'if tid not in df.index or df.at[tid, "status"] != "completed":' 'if tid not in df.index:' tests/reports $A
run paired_reversed reports/regression/intervals.py 'return paired_difference(stats[0], stats[1], level=level)' 'return paired_difference(stats[1], stats[0], level=level)' tests/reports $A
# budget
run labels_term_dropped bench/host/budget.py '+ (2 if training else 0)' '+ 0' tests/config tests/cli $A
run first_scale_only bench/host/budget.py '+ max(views)' '+ views[0]' tests/config tests/cli $A
run v1c_stem_64 bench/host/budget.py 'base = 32 if getattr(backbone, "stem", "standard") == "v1c" else 64' 'base = 64' tests/config tests/cli $A
# cost
run final_checkpoint_twice bench/sweep/cost/estimate.py '+ (1 if train.iterations % train.checkpoint_every else 0)' '+ 1' tests/sweep/cost $A
run gpu_hours_one_worker bench/sweep/cost/estimate.py 'return res.gpus * res.workers, "GPU-h"' 'return res.gpus, "GPU-h"' tests/sweep/cost $A
run seed_in_cost_key bench/sweep/cost/estimate.py '    d.pop("seed", None)
' '' tests/sweep/cost $A
# check
run min_seeds_strict reports/regression/check.py 'enough = m["n"] >= min_seeds' 'enough = m["n"] > min_seeds' tests/reports $A
run ci_without_tolerance reports/regression/check.py 'within = interval.contains(float(p[metric]), widen=tolerance + 1e-9)' 'within = interval.contains(float(p[metric]))' tests/reports $A
# label agreement
run sample_skips_last bench/data/label_agreement.py 'np.linspace(0, len(pairs) - 1, SAMPLE)' 'np.linspace(0, len(pairs) - 2, SAMPLE)' tests/data $A
run zero_label_skipped bench/data/label_agreement.py '    wrong = stored != expected' '    wrong = (stored != expected) & (stored != 0)' tests/data $A
# key mappings
run pretrained_mmseg_stem_swap bench/models/pretrained.py '"stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
               "stem.6."' '"stem.1.": "conv1.4.", "stem.3.": "conv1.3.", "stem.4.": "conv1.1.",
               "stem.6."' tests/models $A
run pretrained_psp_bn_swap bench/models/pretrained.py '"bn1.": "conv1.1.", "conv2.": "conv1.3.", "bn2.": "conv1.4."' '"bn1.": "conv1.4.", "conv2.": "conv1.3.", "bn2.": "conv1.1."' tests/models $A
run mmseg_value_out_swap bench/convert/mmseg.py '"attention.value."),' '"attention.out."),' tests/convert $A
