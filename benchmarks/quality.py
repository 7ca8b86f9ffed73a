"""Downstream quality of pretraining: random init vs ELECTRA vs AMOS, fine-tuned on SST-2.

python benchmarks/quality.py --workdir=/tmp/amos_quality [--preset=tiny] [--pretrain_steps=4000]

Pretrains the preset (same prepared data and tokenizer for every arm) on
--text_file for a fixed number of steps as ELECTRA (`:electra`) and as AMOS, then fine-tunes
each arm and a random-init encoder of the same size on SST-2 (`--sst2_dir` holding train.tsv and
dev.tsv, linked into a GLUE-layout directory) with several seeds at each fine-tuning learning
rate, and prints one table (also written to <workdir>/quality.json) with every arm's median
per learning rate and its best. Rerunning reuses finished pretraining runs.

The bundled /work/shared/data/sst2/dev.tsv is a held-out slice of GLUE SST-2 *train*
(6,735 rows), not GLUE's 872-row dev set: scores are not comparable with published ones.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from amos_jax import host_memory

host_memory.reexec_with_huge_pages()  # Before JAX allocates anything; see host_memory.py.

from absl import app, flags, logging

from amos_jax.glue import finetune
from amos_jax.train import loop
from amos_jax.train import metric_logging
from configs import glue as glue_configs
from configs import small, tiny

flags.DEFINE_string("workdir", "/tmp/amos_quality", "Pretraining and fine-tuning runs go here.")
flags.DEFINE_enum("preset", "tiny", ["tiny", "small"], "Model size to pretrain.")
flags.DEFINE_integer("pretrain_steps", 4000, "Pretraining steps per arm (same for both).")
flags.DEFINE_integer("pretrain_batch_size", 32, "Pretraining global batch.")
flags.DEFINE_float("pretrain_learning_rate", 2e-3, "Pretraining peak learning rate.")
flags.DEFINE_string("text_file", "/work/shared/data/wikitext2/valid.txt", "Pretraining text.")
flags.DEFINE_string("sst2_dir", "/work/shared/data/sst2", "Holds train.tsv and dev.tsv.")
flags.DEFINE_integer("train_examples", 8000, "Random SST-2 training subset (0: all).")
flags.DEFINE_integer("eval_examples", 2000, "First N dev examples (0: all).")
flags.DEFINE_integer("epochs", 3, "Fine-tuning epochs.")
flags.DEFINE_integer("seq_len", 64, "Fine-tuning sequence length.")
flags.DEFINE_list("learning_rates", ["1e-3", "3e-3"],
                  "Fine-tuning peak learning rates, each tried on every arm (as GLUE papers pick "
                  "the learning rate per model on dev); the base-size recipe's 1e-5 barely "
                  "moves a tiny encoder, 3e-4 leaves it near chance after 2 epochs and 1e-2 "
                  "diverges.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Fine-tuning seeds.")
FLAGS = flags.FLAGS

PRESETS = {"tiny": tiny, "small": small}


def pretrain(arm: str, prepared_dir: str) -> tuple[str, dict]:
  """Pretrains one arm ("electra" or "amos"); returns its workdir and final eval metrics."""
  config = PRESETS[FLAGS.preset].get_config(arm)
  steps = FLAGS.pretrain_steps
  config.num_train_steps = steps
  config.batch_size = FLAGS.pretrain_batch_size
  config.optimizer.learning_rate = FLAGS.pretrain_learning_rate
  config.optimizer.warmup_steps = max(1, steps // 10)
  config.eval_every_steps = config.checkpoint_every_steps = steps
  config.log_every_steps = max(1, steps // 20)
  config.eval_batches = 20
  # Wikitext separates paragraphs and headings with whitespace-only lines, so "line" and
  # "blank_line" give the same documents; one paragraph per document.
  config.data.text_files = FLAGS.text_file
  config.data.document_split = "line"
  config.data.prepared_dir = prepared_dir
  workdir = os.path.join(FLAGS.workdir, f"pretrain_{arm}")
  start = time.perf_counter()
  loop.train_and_evaluate(config, workdir)
  seconds = time.perf_counter() - start
  evals = [r for r in metric_logging.read_metrics(workdir) if "eval/rtd_auc" in r]
  final = {k: v for k, v in evals[-1].items() if k.startswith("eval/")} if evals else {}
  return workdir, {"seconds": seconds, **final}


def glue_dir() -> str:
  """A GLUE-layout directory whose SST-2/ is a link to --sst2_dir."""
  directory = os.path.join(FLAGS.workdir, "glue")
  os.makedirs(directory, exist_ok=True)
  link = os.path.join(directory, "SST-2")
  if not os.path.islink(link):
    os.symlink(os.path.abspath(FLAGS.sst2_dir), link)
  return directory


def fine_tune(name: str, init_checkpoint: str, random_init: bool, learning_rate: float) -> dict:
  config = glue_configs.get_config("sst2")
  config.update(dict(
      init_checkpoint=init_checkpoint, random_init=random_init, data_dir=glue_dir(),
      seq_len=FLAGS.seq_len, seeds=tuple(int(s) for s in FLAGS.seeds),
      num_epochs=FLAGS.epochs, learning_rate=learning_rate, warmup_fraction=0.1,
      max_train_examples=FLAGS.train_examples, max_eval_examples=FLAGS.eval_examples,
      log_every_steps=100))
  start = time.perf_counter()
  results = finetune.finetune_and_evaluate(
      config, os.path.join(FLAGS.workdir, f"sst2_{name}_lr{learning_rate:g}"))
  results["seconds"] = time.perf_counter() - start
  return results


def main(argv):
  del argv
  os.makedirs(FLAGS.workdir, exist_ok=True)
  prepared_dir = os.path.join(FLAGS.workdir, "data")
  rows = []
  pretrained = {arm: pretrain(arm, prepared_dir) for arm in ("electra", "amos")}
  arms = [("random init", pretrained["amos"][0], True, {}),
          ("ELECTRA", *pretrained["electra"][:1], False, pretrained["electra"][1]),
          ("AMOS", *pretrained["amos"][:1], False, pretrained["amos"][1])]
  learning_rates = [float(lr) for lr in FLAGS.learning_rates]
  for name, workdir, random_init, pretrain_metrics in arms:
    for learning_rate in learning_rates:
      results = fine_tune(name.split()[0].lower(), workdir, random_init, learning_rate)
      accuracies = [s["best"]["metrics"]["validation"]["accuracy"] for s in results["seeds"]]
      rows.append({"arm": name, "learning_rate": learning_rate, "pretrain": pretrain_metrics,
                   "accuracies": accuracies,
                   "median": results["median"]["validation"]["accuracy"],
                   "finetune_seconds": results["seconds"],
                   "num_train_examples": results["num_train_examples"],
                   "num_eval_examples": results["num_eval_examples"]["validation"]})
  with open(os.path.join(FLAGS.workdir, "quality.json"), "w") as f:
    flag_values = {flag.name: flag.value for flag in FLAGS.get_key_flags_for_module(sys.argv[0])}
    json.dump({"flags": flag_values, "rows": rows}, f, indent=2)
  depth = "eval/mlm_accuracy/depth_"
  print(f"\nSST-2 accuracy ({FLAGS.preset} preset, {FLAGS.pretrain_steps} pretraining steps of "
        f"{FLAGS.pretrain_batch_size} per arm on {FLAGS.text_file}; "
        f"{rows[0]['num_train_examples']} train / {rows[0]['num_eval_examples']} eval examples, "
        f"{FLAGS.epochs} epochs, seeds {','.join(FLAGS.seeds)}). Eval split = the first rows of "
        f"{FLAGS.sst2_dir}/dev.tsv, a held-out slice of GLUE SST-2 train, not GLUE's dev set.\n")
  print("| arm | pretrain s | eval MLM acc (deepest) | eval RTD AUC | fine-tune lr "
        "| acc per seed | median |")
  print("| --- | --- | --- | --- | --- | --- | --- |")
  for row in rows:
    metrics = row["pretrain"]
    mlm = [v for k, v in sorted(metrics.items()) if k.startswith(depth)]
    pretrain_columns = (
        f"{metrics['seconds']:.0f} | {mlm[-1]:.3f} | {metrics['eval/rtd_auc']:.3f}"
        if metrics else "- | - | -")  # The random-init arm is not pretrained.
    accuracies = ", ".join(f"{a:.3f}" for a in row["accuracies"])
    print(f"| {row['arm']} | {pretrain_columns} | {row['learning_rate']:g} | {accuracies} "
          f"| {row['median']:.3f} |")
  print("\nBest median per arm (learning rate picked on the eval split, as GLUE papers do):")
  for name, *_ in arms:
    best = max((r for r in rows if r["arm"] == name), key=lambda r: r["median"])
    print(f"  {name}: {best['median']:.3f} (lr {best['learning_rate']:g})")
  logging.info("Wrote %s", os.path.join(FLAGS.workdir, "quality.json"))


if __name__ == "__main__":
  app.run(main)
