"""The one-command evaluation (amos_jax.benchmark, amos_jax/evaluation_suite) end to end on a
tiny encoder and tiny synthetic data in every GLUE file layout: the row, the paper's average,
the submission files, resume, comparison and bad input."""

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from amos_jax import errors
from amos_jax.evaluation_suite import columns
from amos_jax.evaluation_suite import plan as plan_lib
from amos_jax.evaluation_suite import runner
from amos_jax.evaluation_suite import submission
from amos_jax.evaluation_suite import table
from amos_jax.finetune import seeds
from amos_jax.glue import tasks
from amos_jax.train import step as train_step_lib
from tests.test_glue_finetune import sentence
from tests.test_glue_finetune import write_tsv
from tests.test_squad_finetune import QUICK as SQUAD_QUICK
from tests.test_squad_finetune import write_squad_dir
from tests import helpers
from tests import xla_test_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The module's run fine-tunes every task (about three minutes of CPU): scheduled first.
pytestmark = pytest.mark.slow
NUM_TEST = 5
# One step per seed (32 rows, the tiny recipe's batch), two seeds: what is tested here is the
# plumbing around fine-tuning, which tests/test_glue_finetune.py tests on its own. One device
# compiles faster than eight.
QUICK = dict(seq_len=32, num_epochs=1, eval_batch_size=16)
GLUE_TASKS = columns.GLUE_TASKS + ("wnli",)


def one_device():
  return train_step_lib.make_mesh(jax.devices()[:1])


def write_split(path, spec, layout, count, rng):
  """`count` rows of `layout` (a tasks.TsvFile), labelled if it has a label column."""
  labels = [rng.randint(0, spec.num_labels - 1) for _ in range(count)]
  values = [5.0 * y if spec.is_regression else y for y in labels]
  if not layout.has_header:  # CoLA's train and dev: source, label, mark, sentence.
    width = max(layout.text_columns + (layout.label_column,)) + 1
    rows = []
    for value in values:
      row = ["src"] * width
      row[layout.text_columns[0]] = sentence(rng)
      row[layout.label_column] = value
      rows.append(row)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      f.writelines("\t".join(map(str, row)) + "\n" for row in rows)
    return
  header = ("index",) + layout.text_columns + (
      (layout.label_column,) if layout.label_column else ())
  write_tsv(path, header, [(i, *(sentence(rng) for _ in layout.text_columns),
                            *((value,) if layout.label_column else ()))
                           for i, value in enumerate(values)])


def make_glue_dir(directory):
  """Every file of the GLUE download the suite reads, MNLI's two dev and test files and the
  diagnostic set included: 32 training rows, 8 dev, 5 test."""
  rng = random.Random(0)
  for spec in [tasks.get_task(task) for task in GLUE_TASKS] + [tasks.DIAGNOSTIC]:
    for split, layout in spec.tsv_files.items():
      count = 32 if split == "train" else 8 if layout.label_column is not None else NUM_TEST
      write_split(os.path.join(directory, spec.glue_dir, layout.file_name), spec, layout, count,
                  rng)
  return directory


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp("data")
  return (make_glue_dir(str(root / "glue")),
          write_squad_dir(str(root / "squad"), num_train=48, num_dev=8))


def make_plan(workdir, glue_dir, squad_dir, out, **fields):
  squad_overrides = dict(SQUAD_QUICK, num_epochs=1)
  squad_overrides.pop("seeds")
  return plan_lib.Plan(**dict(dict(
      init_checkpoint=workdir, glue_dir=glue_dir, squad_dir=squad_dir, workdir=out,
      tasks=plan_lib.task_names(None, squad_dir), seeds=(0, 1),
      from_mnli=("rte", "mrpc", "stsb"), overrides=QUICK, squad_overrides=squad_overrides),
      **fields))


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory, workdir, data_dirs):
  out = str(tmp_path_factory.mktemp("suite") / "out")
  plan = make_plan(workdir, *data_dirs, out)
  return plan, runner.run(plan, one_device())


def test_the_row_has_every_column_in_the_papers_order(suite_run):
  plan, record = suite_run
  with open(os.path.join(plan.workdir, table.RESULTS_JSON)) as f:
    assert json.load(f) == json.loads(json.dumps(record))
  assert [entry["label"] for entry in record["columns"]] == [
      "MNLI-m", "MNLI-mm", "QQP", "QNLI", "SST-2", "CoLA", "RTE", "MRPC", "STS-B",
      "SQuAD 2.0 EM", "SQuAD 2.0 F1"]
  for entry in record["columns"]:
    results = json.loads(open(os.path.join(plan.workdir, entry["task"], seeds.RESULTS_FILE)).read())
    scale = 1.0 if entry["task"] == "squad" else 100.0
    expected = [s["best"]["metrics"][entry["split"]][entry["metric"]] * scale
                for s in results["seeds"]]
    assert list(entry["per_seed"]) == ["0", "1"]
    assert entry["median"] == pytest.approx(float(np.median(expected)))
    assert (entry["min"], entry["max"]) == (min(expected), max(expected))
  medians = {entry["label"]: entry["median"] for entry in record["columns"]}
  # The paper's average: eight tasks, MNLI by its matched score only.
  assert record["average"] == pytest.approx(np.mean(
      [medians[label] for label in ("MNLI-m", "QQP", "QNLI", "SST-2", "CoLA", "RTE", "MRPC",
                                    "STS-B")]))
  markdown = open(os.path.join(plan.workdir, table.RESULTS_MD)).read()
  assert ("| | MNLI-m | MNLI-mm | QQP | QNLI | SST-2 | CoLA | RTE | MRPC | STS-B | AVG | "
          "SQuAD 2.0 EM | SQuAD 2.0 F1 |") in markdown
  assert f"| median | {medians['MNLI-m']:.1f} | " in markdown
  assert "| AMOS base++, published | 90.5 | 90.4 | 92.4 |" in markdown
  assert "| sst2 | tiny_encoder: batch 32, lr 3e-3, 1 epoch (set by you), warmup 10% |" in markdown
  assert record["init_sha256"][:16] in markdown and record["date"] in markdown
  with open(os.path.join(plan.workdir, "results.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_rte_mrpc_and_stsb_start_from_the_best_mnli_model(suite_run):
  plan, record = suite_run
  mnli = record["tasks"]["mnli"]
  for task in ("rte", "mrpc", "stsb"):
    assert record["tasks"][task]["init_checkpoint"] == mnli["best_checkpoint"]
  for task in ("qqp", "sst2", "squad"):
    assert record["tasks"][task]["init_checkpoint"] == plan.init_checkpoint


def test_the_submission_has_the_servers_files_headers_and_labels(suite_run):
  plan, record = suite_run
  out = os.path.join(plan.workdir, submission.SUBMISSION_DIR)
  names = ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv",
           "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"]
  assert record["submission"]["files"] == names and record["submission"]["skipped"] == {}
  allowed = {"MNLI-m.tsv": {"entailment", "neutral", "contradiction"},
             "QNLI.tsv": {"entailment", "not_entailment"}}
  allowed["MNLI-mm.tsv"] = allowed["AX.tsv"] = allowed["MNLI-m.tsv"]
  allowed["RTE.tsv"] = allowed["QNLI.tsv"]
  for name in names:
    lines = open(os.path.join(out, name)).read().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 1 + NUM_TEST
    indices, labels = zip(*(line.split("\t") for line in lines[1:]))
    assert indices == tuple(str(i) for i in range(NUM_TEST))
    if name == "STS-B.tsv":
      [float(label) for label in labels]  # Raises on anything but a number.
    else:
      assert set(labels) <= allowed.get(name, {"0", "1"}), (name, labels)
  with zipfile.ZipFile(os.path.join(out, submission.ZIP_FILE)) as archive:
    assert sorted(archive.namelist()) == sorted(names)


def test_the_average_reproduces_the_published_one():
  published = columns.PUBLISHED_AMOS_BASE_PLUS_PLUS
  assert round(columns.glue_average(published), 1) == published["AVG"]
  assert columns.glue_average(dict(published, RTE=None)) is None


def test_missing_data_files_are_all_named_before_anything_trains(workdir, data_dirs, tmp_path):
  glue_dir = str(tmp_path / "glue")
  shutil.copytree(data_dirs[0], glue_dir)
  os.remove(os.path.join(glue_dir, "QQP", "dev.tsv"))
  os.remove(os.path.join(glue_dir, "MNLI", "dev_mismatched.tsv"))
  plan = make_plan(workdir, glue_dir, data_dirs[1], str(tmp_path / "out"))
  with pytest.raises(errors.InputError, match=(
      r"Missing data files: mnli: .*/MNLI/dev_mismatched.tsv; qqp: .*/QQP/dev.tsv\. Put them "
      r"there, or pass --tasks=qnli,sst2,cola,rte,mrpc,stsb,squad to run the others")):
    runner.run(plan)
  assert not os.path.exists(tmp_path / "out")


def test_an_unreadable_checkpoint_is_one_line(data_dirs, tmp_path):
  plan = make_plan(str(tmp_path / "nothing"), *data_dirs, str(tmp_path / "out"))
  with pytest.raises(errors.InputError, match=r"--init_checkpoint=.*/nothing cannot be read: "
                                              r".* is not a directory"):
    runner.run(plan)


def test_a_missing_test_file_leaves_out_only_its_tsv(suite_run, data_dirs, tmp_path, caplog):
  plan, record = suite_run
  glue_dir = str(tmp_path / "glue")
  shutil.copytree(data_dirs[0], glue_dir)
  os.remove(os.path.join(glue_dir, "RTE", "test.tsv"))
  models = {task: record["tasks"][task]["best_checkpoint"] for task in ("sst2", "rte")}
  written = submission.write(str(tmp_path / "sub"), glue_dir, models, {"sst2": 32, "rte": 32})
  assert written["files"] == ["SST-2.tsv", "WNLI.tsv"]  # WNLI: the majority class.
  assert "RTE/test.tsv" in written["skipped"]["RTE.tsv"]
  assert written["skipped"]["QQP.tsv"] == "no qqp model in this run"
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert len(warnings) == 1 and "RTE.tsv left out" in warnings[0]


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "amos_jax.benchmark", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120, check=False)


def test_compare_prints_both_rows_ranges_and_differences(suite_run, tmp_path):
  plan, record = suite_run
  other = tmp_path / "other"
  other.mkdir()
  changed = json.loads(json.dumps(record))
  changed["columns"][2].update(median=record["columns"][2]["median"] + 1.5, min=10.0, max=99.0)
  (other / table.RESULTS_JSON).write_text(json.dumps(changed))
  result = run_cli(f"--compare={plan.workdir},{other}")
  assert result.returncode == 0, result.stderr[-2000:]
  qqp = next(line for line in result.stdout.splitlines() if line.startswith("QQP"))
  entry = record["columns"][2]
  assert qqp.split() == ["QQP", f"{entry['median']:.1f}", f"{entry['min']:.1f}", "to",
                         f"{entry['max']:.1f}", f"{entry['median'] + 1.5:.1f}", "10.0", "to",
                         "99.0", "+1.5"]
  assert "column" in result.stdout and "AVG" in result.stdout

  (other / table.RESULTS_JSON).write_text('{"columns": [')
  result = run_cli(f"--compare={plan.workdir},{other}")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (f"error: {other}/results.json is not valid JSON (Expecting "
                                   "value: line 1 column 14 (char 13)): truncated, or another "
                                   "kind of file.")


def run_two_hosts(*args):
  """`python -m amos_jax.benchmark *args` as two hosts of one device each: [(rc, out, err)]."""
  address = helpers.free_localhost_address()
  env = xla_test_flags.subprocess_env(JAX_PLATFORMS="cpu")
  processes = [subprocess.Popen(
      [sys.executable, "-m", "amos_jax.benchmark", f"--coordinator_address={address}",
       "--num_processes=2", f"--process_id={i}", *args], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=400) for p in processes]
  return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def test_two_hosts_fine_tune_together_and_process_0_alone_writes(workdir, data_dirs, tmp_path):
  out = str(tmp_path / "out")
  args = (f"--init_checkpoint={workdir}", f"--glue_dir={data_dirs[0]}", f"--workdir={out}",
          "--tasks=sst2", "--seeds=0", "--num_epochs=1")
  first = run_two_hosts(*args)
  for rc, _, err in first:
    assert rc == 0, err[-3000:]
  (_, out_0, err_0), (_, out_1, err_1) = first
  assert "JAX process 0/2, 1 local / 2 global devices." in err_0
  assert "JAX process 1/2, 1 local / 2 global devices." in err_1
  # Both trained the seed (its steps are collective); only process 0 wrote and printed.
  for err in (err_0, err_1):
    assert "sst2: fine-tuning seeds [0]" in err
  assert "| | MNLI-m | MNLI-mm |" in out_0 and "MNLI-m" not in out_1
  assert "GLUE submission: 2 files" in err_0 and "GLUE submission" not in err_1
  record = json.loads(open(os.path.join(out, table.RESULTS_JSON)).read())
  sst2 = next(entry for entry in record["columns"] if entry["label"] == "SST-2")
  assert list(sst2["per_seed"]) == ["0"]
  lines = open(os.path.join(out, submission.SUBMISSION_DIR, "SST-2.tsv")).read().splitlines()
  assert len(lines) == 1 + NUM_TEST

  # A rerun: both hosts skip the finished task, as process 0 decides; the row keeps the date
  # and commit of the run that made its figures.
  record["date"], record["git_commit"] = "2026-01-02", "abc1234"
  with open(os.path.join(out, table.RESULTS_JSON), "w") as f:
    json.dump(record, f)
  again = run_two_hosts(*args)
  for rc, _, err in again:
    assert rc == 0, err[-3000:]
    assert "sst2: every seed is in" in err and "fine-tuning seeds" not in err
  assert "2026-01-02, commit abc1234;" in open(os.path.join(out, table.RESULTS_MD)).read()


def test_a_rerun_trains_only_what_a_killed_run_left(suite_run, monkeypatch):
  """Last in the file: it changes the run's directory (and puts it back as it was)."""
  plan, record = suite_run
  out = plan.workdir
  # As if killed in sst2's seed 1, then also in cola's first seed.
  sst2_path = os.path.join(out, "sst2", seeds.RESULTS_FILE)
  sst2 = json.loads(open(sst2_path).read())
  seeds.write_json(sst2_path, dict(sst2, seeds=sst2["seeds"][:1],
                                   median=seeds.median(sst2["seeds"][:1])))
  os.remove(os.path.join(out, "cola", seeds.RESULTS_FILE))
  kept_export = os.path.join(out, "qqp", "seed_0", "best")
  mtimes = {name: os.stat(os.path.join(kept_export, name)).st_mtime_ns
            for name in os.listdir(kept_export)}
  trained = []
  train_seed = seeds._Run.train_seed

  def recording_train_seed(self, seed, *args):
    trained.append((self.task.name, seed))
    return train_seed(self, seed, *args)

  monkeypatch.setattr(seeds._Run, "train_seed", recording_train_seed)
  resumed = runner.run(plan, one_device())
  assert trained == [("sst2", 1), ("cola", 0), ("cola", 1)]
  assert {name: os.stat(os.path.join(kept_export, name)).st_mtime_ns
          for name in os.listdir(kept_export)} == mtimes
  assert resumed["columns"] == record["columns"]  # Seeds are deterministic.
