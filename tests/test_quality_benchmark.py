"""benchmarks/quality.py's bookkeeping: points along a run (--curve_steps) and the table."""

import functools
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run in a fresh interpreter: quality.py defines absl flags (workdir, ...) that other modules
# imported by the test process define too.
SCRIPT = r"""
import json, os, sys, tempfile, types
from benchmarks import quality
quality.FLAGS(["quality", "--tasks=sst2", "--seeds=0,1,2"])
record = {"name": "electra", "preset": "electra", "workdir": "/w/pretrain_electra",
          "steps": 400, "seconds": 80.0, "median_tokens_per_s": 100.0,
          "quiet_seconds": 60.0, "tokens": 4000,
          "eval": {"eval/rtd_auc": 0.8, "eval/mlm_accuracy/depth_1": 0.3},
          "evals": {"100": {"eval/rtd_auc": 0.6, "eval/mlm_accuracy/depth_1": 0.1},
                    "400": {"eval/rtd_auc": 0.8, "eval/mlm_accuracy/depth_1": 0.3}}}
early = quality.at_step(record, 100)
try:
  quality.at_step(record, 200)
except ValueError as error:
  missing = str(error)
scores = lambda accuracies: {"sst2": {
    "accuracies": accuracies, "median": sorted(accuracies)[1], "recipe": {},
    "num_train_examples": 10, "num_eval_examples": 5}}
rows = [{"arm": "random init", "pretrain": None, "tasks": scores([0.5, 0.6, 0.7])},
        {"arm": "ELECTRA", "pretrain": record, "tasks": scores([0.7, 0.8, 0.9])},
        {"arm": "ELECTRA at step 100", "pretrain": early, "tasks": scores([0.6, 0.65, 0.7])}]
quality.FLAGS(["quality", "--preset=mini", "--pretrain_override=model.dtype=bfloat16",
               "--pretrain_override=batch_size=256", "--pretrain_override=optimizer.warmup_steps=50"])
config, overrides = quality.pretrain_config("electra")
overridden = [config.model.dtype, config.batch_size, config.optimizer.warmup_steps,
              config.model.generator.mlm_layers]
errors = []
for bad in ("batch_size=big", "model.no_such_key=1", "nokeyvalue"):
  quality.FLAGS.pretrain_override = [bad]
  try:
    quality.pretrain_config("amos")
  except quality.app.UsageError as error:
    errors.append(str(error))
# A run that returns before its last step (preempted) leaves no record and says so.
quality.FLAGS.pretrain_override = []
quality.FLAGS(["quality", "--workdir=" + tempfile.mkdtemp()])
quality.loop.train_and_evaluate = lambda config, workdir: types.SimpleNamespace(step=7)
try:
  quality.pretrain("electra", "electra", 400)
  stopped = "no error"
except SystemExit as error:
  stopped = str(error)
records_left = os.path.exists(os.path.join(quality.FLAGS.workdir, "pretrain_electra", "arm.json"))
# Which arms pretrain, and for how many steps: a stand-in pretrain() that only records.
pretrained = []
def fake_pretrain(name, preset, steps, keep_steps=()):
  pretrained.append([name, steps])
  return {"name": name, "workdir": "/w/pretrain_" + name, "steps": steps,
          "quiet_seconds": {"electra": 100.0, "amos": 75.0}.get(name, 1.0)}
quality.pretrain = fake_pretrain
plans = {}
# Flags keep their values from one parse to the next: each plan sets both.
for args in (["--arms=random,amos", "--amos_steps=300"], ["--arms=random", "--amos_steps=0"],
             ["--arms=", "--amos_steps=300"]):
  pretrained.clear()
  quality.FLAGS(["quality"] + args)
  arms, size_source = quality.pretrained_arms(400)
  plans[" ".join(args)] = {"pretrained": list(pretrained), "size_source": size_source["name"],
                           "arms": [label for label, _ in arms]}
print(json.dumps({"early": early, "missing": missing, "table": quality.table(rows),
                  "overrides": overrides, "overridden": overridden, "errors": errors,
                  "plans": plans, "stopped": stopped, "records_left": records_left}))
"""


@functools.cache
def _run_script() -> dict:
  env = dict(os.environ, AMOS_JAX_NO_HUGE_PAGES="1")
  result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.splitlines()[-1])


def test_an_earlier_step_of_a_run_and_the_table_that_shows_it():
  out = _run_script()
  early = out["early"]
  # A quarter of the run: a quarter of its time and tokens, that step's held-out scores,
  # and the same workdir, read at that step.
  assert (early["name"], early["steps"], early["init_step"]) == ("electra_step100", 100, 100)
  assert (early["quiet_seconds"], early["seconds"], early["tokens"]) == (15.0, 20.0, 1000)
  assert early["eval"] == {"eval/rtd_auc": 0.6, "eval/mlm_accuracy/depth_1": 0.1}
  assert early["workdir"] == "/w/pretrain_electra"
  assert "kept no checkpoint of step 200" in out["missing"] and "[100, 400]" in out["missing"]
  lines = out["table"].splitlines()
  assert lines[4] == "| random init | - | - | - | - | - | 0.600 [0.500-0.700] |"
  assert lines[5] == "| ELECTRA | 400 | 1.0 | 0.0M | 0.300 | 0.800 | 0.800 [0.700-0.900] (+20.0) |"
  assert lines[6] == ("| ELECTRA at step 100 | 100 | 0.2 | 0.0M | 0.100 | 0.600 "
                      "| 0.650 [0.600-0.700] (+5.0) |")


def test_pretraining_overrides_keep_the_config_types_and_name_bad_ones():
  out = _run_script()
  assert out["overrides"] == {"model.dtype": "bfloat16", "batch_size": 256,
                              "optimizer.warmup_steps": 50}
  assert out["overridden"] == ["bfloat16", 256, 50, [1]]  # The preset still applies.
  bad_type, missing_key, no_value = out["errors"]
  assert "--pretrain_override" in bad_type and "batch_size" in bad_type
  assert "no_such_key" in missing_key
  assert "'nokeyvalue': expected key=value" in no_value


def test_only_the_arms_asked_for_pretrain_and_amos_can_take_its_own_steps():
  plans = _run_script()["plans"]
  # AMOS alone (e.g. for ELECTRA's wall-clock) does not pretrain ELECTRA first; random init
  # then takes AMOS's size and tokenizer.
  amos_only = plans["--arms=random,amos --amos_steps=300"]
  assert amos_only["pretrained"] == [["amos", 300]]
  assert amos_only["size_source"] == "amos"
  assert amos_only["arms"] == ["random init", "AMOS"]
  # Random init alone needs some run's size and tokenizer: ELECTRA's, the cheapest.
  assert plans["--arms=random --amos_steps=0"]["pretrained"] == [["electra", 400]]
  # All arms: ELECTRA for AMOS's wall-clock gets ELECTRA's steps per second times the
  # seconds AMOS's 300 steps took: 400 / 100 * 75 = 300.
  everything = plans["--arms= --amos_steps=300"]
  assert everything["pretrained"] == [["electra", 400], ["amos", 300],
                                      ["electra_equal_time", 300]]
  assert everything["size_source"] == "electra"


def test_a_preempted_pretraining_run_leaves_no_record_and_says_how_to_resume():
  out = _run_script()
  assert "stopped at step 7 of 400" in out["stopped"] and "again to resume" in out["stopped"]
  assert not out["records_left"]
