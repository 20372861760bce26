#!/bin/bash
# Issue 32's planted bugs (docs/testing.md, "The second audit's planted bugs"): plant each, one at a time, in a
# scratch copy of HEAD (never in the working tree, where `make mutation` may be copying sources), run its tests
# (tests/audit/planted/, no Ray), print which fail, restore. Every row should print at least one FAILED line.
# Usage: tools/planted_bugs_check_32.sh   (from the repository root; PY=python to use another interpreter)
set -u
REPO=$(pwd)
PY=${PY:-$REPO/.venv/bin/python}
SCRATCH=$(mktemp -d /tmp/planted-bugs-32.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
git archive HEAD | tar -x -C "$SCRATCH"
cd "$SCRATCH"
plant() {  # name file old new tests...
  name=$1; file=$2; old=$3; new=$4; shift 4
  cp "$file" "$file.orig"
  $PY - "$file" "$old" "$new" <<'PYEOF'
import sys; p, old, new = sys.argv[1:]; s = open(p).read(); assert s.count(old) == 1, (p, old); open(p, "w").write(s.replace(old, new))
PYEOF
  echo "=== $name: $file"
  $PY -m pytest -q -p no:cacheprovider -rf "$@" 2>&1 | grep -E "^FAILED|^[0-9]+ (passed|failed)|[0-9]+ failed" | cut -c1-160
  mv "$file.orig" "$file"
}
P=tests/audit/planted
plant key_without_device bench/sweep/tasks/measurement.py '"device": device_kind(payload),' '' \
  $P/test_measurement_key_and_bundle.py
plant bundle_one_cpu_free bench/sweep/tasks/measurement.py 'bundle = {"CPU": res["CPU"],' 'bundle = {"CPU": res["CPU"] - 1,' \
  $P/test_measurement_key_and_bundle.py
plant sdk_error_unredacted bench/sweep/folder/storage.py '    return redact(one_line(exc))' '    return one_line(exc)' \
  $P/test_storage_credentials_and_download.py
plant password_only_credential bench/sweep/folder/storage.py 'if parts.username or parts.password:' 'if parts.password:' \
  $P/test_storage_credentials_and_download.py
plant table_file_not_pulled bench/sweep/folder/layout.py 'TABLE_FILES = (RESULTS_CSV, RESULTS_PARQUET, PER_CLASS_CSV)' \
  'TABLE_FILES = (RESULTS_CSV, RESULTS_PARQUET)' $P/test_storage_credentials_and_download.py
plant builtins_after_user bench/sweep/spec/protocols.py '        data.update(self.overrides)
        return data' '        data.update(self.overrides)
        data.update(BUILTINS.get(self.name, {}))
        return data' $P/test_protocols_applied.py
plant task_uses_trial_eval bench/sweep/tasks/eval_tasks.py 'evaluate_with_interval(model, cfg, eval_cfg, device, dataset)' \
  'evaluate_with_interval(model, cfg, cfg.eval, device, dataset)' $P/test_protocols_applied.py
plant tolerance_upper_only bench/engine/evaluation/bootstrap.py 'return self.low - widen <= value <= self.high + widen' \
  'return self.low <= value <= self.high + widen' $P/test_check_interval_rule.py
plant mmseg_stem_bn_swap bench/convert/mmseg.py '"stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4."' \
  '"stem.1.": "conv1.4.", "stem.3.": "conv1.3.", "stem.4.": "conv1.1."' $P/test_key_mappings.py
plant eval_term_dropped bench/host/budget.py 'views.append(forward_bytes(1, *window, stem=stem) + int(num_classes) * h * w * FLOAT32)' \
  'views.append(forward_bytes(1, *window, stem=stem))' $P/test_budget_terms.py
plant void_pixels_skipped bench/data/label_agreement.py '    wrong = stored != expected' \
  '    wrong = (stored != expected) & (expected != 255)' $P/test_label_agreement_void.py
plant ci_level_fixed reports/regression/check.py 'model_interval(results, str(m["trial_ids"]).split(","), ci)' \
  'model_interval(results, str(m["trial_ids"]).split(","), 95)' $P/test_check_interval_rule.py
plant final_eval_twice bench/sweep/cost/estimate.py 'range(every, train.iterations, every)' \
  'range(every, train.iterations + 1, every)' $P/test_cost_evaluations.py
# further variants of the same kinds
plant ci_level_fixed_in_command bench/commands/check.py 'include_reproductions=args.include_reproductions, ci=args.ci)' \
  'include_reproductions=args.include_reproductions, ci=95 if args.ci else None)' $P/test_check_interval_rule.py
plant score_map_dropped bench/host/budget.py '    return int(num_classes) * int(height) * int(width) * FLOAT32 + max(views)' \
  '    return max(views)' $P/test_budget_terms.py
plant ocr_query_key_swap bench/convert/mmseg.py '"attention.query."),' '"attention.key."),' $P/test_key_mappings.py
plant release_pe_levels_reversed bench/convert/release.py 'm.out[f"head.pe.{level}.freq"]' 'm.out[f"head.pe.{3 - level}.freq"]' \
  $P/test_key_mappings.py
plant release_enc1_enc2_swap bench/convert/release.py '"decoder.enc1": "head.reduce.0", "decoder.enc2": "head.reduce.1"' \
  '"decoder.enc1": "head.reduce.1", "decoder.enc2": "head.reduce.0"' $P/test_key_mappings.py
