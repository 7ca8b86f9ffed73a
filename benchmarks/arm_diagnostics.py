"""What pretraining did to each arm's shared token embedding, beside its held-out figures.

python benchmarks/arm_diagnostics.py --workdirs=/tmp/amos_quality/pretrain_electra,... \
  [--sst2_dir=../shared/data/sst2] [--out=diagnostics.json]

For each pretraining workdir (an arm of benchmarks/quality.py, or any run):
- the token embedding's drift from its initial values (rebuilt from the run's config and
  seed, as training initialised it) and its norm, per frequency band of the vocabulary
  (token counts over the prepared training rows): mean ||E - E0|| / ||E0|| and mean ||E||;
- a bag-of-embeddings probe: a ridge classifier on the mean token embedding of each SST-2
  sentence (--probe_train rows of train.tsv, scored on dev.tsv), for the final and for the
  initial embedding (a random-init reference of the same size);
- how much the discriminator's final [CLS] vector, what a fine-tuned classifier starts from,
  varies between --cls_sentences SST-2 dev sentences, final and at initialisation: the mean
  cosine between two sentences' vectors (1: every sentence looks alike) and the spread, the
  mean per-dimension standard deviation over sentences divided by the vectors' RMS norm;
- the last held-out evaluation in metrics.jsonl: RTD AUC, MLM accuracy per depth, mixture
  weights per depth.
It prints one table and writes the same figures as JSON to --out.
"""

import json
import os
import sys

from absl import app
from absl import flags
import jax
import ml_collections
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from amos_jax import atomic_file  # pylint: disable=g-import-not-at-top
from amos_jax import inference  # pylint: disable=g-import-not-at-top
from amos_jax.data import prepared as prepared_lib  # pylint: disable=g-import-not-at-top
from amos_jax.data import tokenizer as tokenizer_lib  # pylint: disable=g-import-not-at-top
from amos_jax.models import amos  # pylint: disable=g-import-not-at-top
from amos_jax.train import build  # pylint: disable=g-import-not-at-top
from amos_jax.formats import json_files  # pylint: disable=g-import-not-at-top
from amos_jax.train import checkpointing  # pylint: disable=g-import-not-at-top

flags.DEFINE_list("workdirs", [], "Pretraining workdirs to diagnose.")
flags.DEFINE_string("sst2_dir", os.path.join(REPO, "..", "shared", "data", "sst2"),
                    "train.tsv and dev.tsv of SST-2, for the bag-of-embeddings probe.")
flags.DEFINE_integer("probe_train", 8000, "SST-2 train rows the ridge probe fits on.")
flags.DEFINE_float("ridge", 1.0, "The probe's L2 penalty (features are standardised).")
flags.DEFINE_integer("count_rows", 20000, "Prepared training rows counted for frequencies.")
flags.DEFINE_list("bands", ["100", "1000", "4000"],
                  "Frequency-rank boundaries of the bands (the last band holds the rest).")
flags.DEFINE_integer("cls_sentences", 1000, "SST-2 dev sentences the [CLS] figures read.")
flags.DEFINE_string("out", "", "JSON file for the figures; empty: print only.")
FLAGS = flags.FLAGS


def read_config(workdir: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(json_files.read_dict(os.path.join(workdir, "config.json")))


def initial_and_final_params(workdir: str, config) -> tuple[dict, dict, int]:
  """The whole model's params as training initialised them (rebuilt from the run's config
  and seed), the final checkpoint's, and its step."""
  model = amos.AmosModel(config.model)
  initial = jax.jit(lambda key: amos.init_params(model, key, config.seq_len))(
      build.init_key(config))
  step, final = checkpointing.load_params(os.path.join(workdir, "checkpoints"))
  return jax.device_get(initial), final, step


def cls_figures(encoder: inference.LoadedEncoder, encoder_params, sentences) -> dict:
  """The mean cosine between different sentences' [CLS] vectors and their spread."""
  encoder.params = jax.device_put(encoder_params)
  pooled = encoder.encode(sentences).pooled.astype(np.float64)
  unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
  n = len(unit)
  cosine = (np.square(unit.sum(0)).sum() - n) / (n * (n - 1))  # Mean over pairs i != j.
  spread = pooled.std(0).mean() / np.sqrt(np.mean(np.square(pooled).sum(1)) / pooled.shape[1])
  return {"mean_cosine": float(cosine), "spread": float(spread)}


def frequency_ranks(workdir: str, config, vocab_size: int, count_rows: int) -> np.ndarray:
  """Each token id's rank by its count in the prepared training rows (0: most frequent)."""
  data = prepared_lib.load_prepared(config.data.prepared_dir or os.path.join(workdir, "data"))
  counts = np.zeros(vocab_size, np.int64)
  remaining = count_rows
  for shard in data.shards("train"):
    rows = np.asarray(shard[:remaining])
    counts += np.bincount(rows.ravel(), minlength=vocab_size)[:vocab_size]
    remaining -= len(rows)
    if remaining <= 0:
      break
  ranks = np.empty(vocab_size, np.int64)
  ranks[np.argsort(-counts, kind="stable")] = np.arange(vocab_size)
  return ranks


def band_figures(initial, final, ranks, boundaries) -> list[dict]:
  edges = [0] + boundaries + [len(ranks)]
  rows = []
  for low, high in zip(edges[:-1], edges[1:]):
    in_band = (ranks >= low) & (ranks < high)
    drift = np.linalg.norm(final[in_band] - initial[in_band], axis=1)
    rows.append({"band": f"{low}-{high}", "tokens": int(in_band.sum()),
                 "relative_drift": float(np.mean(drift / np.linalg.norm(initial[in_band],
                                                                         axis=1))),
                 "initial_norm": float(np.mean(np.linalg.norm(initial[in_band], axis=1))),
                 "final_norm": float(np.mean(np.linalg.norm(final[in_band], axis=1)))})
  return rows


def sentence_features(embedding, tokenizer, sentences) -> np.ndarray:
  """Mean token embedding of each sentence."""
  features = np.zeros((len(sentences), embedding.shape[1]), np.float32)
  for i, ids in enumerate(tokenizer.encode_batch(sentences)):
    if ids:
      features[i] = embedding[ids].mean(axis=0)
  return features


def ridge_accuracy(train_x, train_y, test_x, test_y, penalty: float) -> float:
  """Accuracy of a ridge classifier (labels as -1/+1) on standardised features."""
  mean, std = train_x.mean(0), train_x.std(0) + 1e-6
  train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
  train_x = np.hstack([train_x, np.ones((len(train_x), 1))])
  test_x = np.hstack([test_x, np.ones((len(test_x), 1))])
  targets = np.where(train_y > 0, 1.0, -1.0)
  weights = np.linalg.solve(train_x.T @ train_x + penalty * np.eye(train_x.shape[1]),
                            train_x.T @ targets)
  return float(np.mean((test_x @ weights > 0) == (test_y > 0)))


def last_eval(workdir: str) -> dict:
  last = {}
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      figures = {k: v for k, v in record.items()
                 if k.startswith(("eval/", "mixture_weight/"))}
      if any(k.startswith("eval/") for k in figures):
        last = {"step": record.get("step"), **figures}
  return last


def diagnose(workdir: str, probe) -> dict:
  config = read_config(workdir)
  tokenizer = tokenizer_lib.load_tokenizer(os.path.join(workdir, "tokenizer.model"))
  initial_params, final_params, step = initial_and_final_params(workdir, config)
  initial = np.asarray(initial_params["token_embedding"], np.float32)
  final = np.asarray(final_params["token_embedding"], np.float32)
  ranks = frequency_ranks(workdir, config, final.shape[0], FLAGS.count_rows)
  train, dev = probe
  accuracy = {}
  for name, embedding in (("final", final), ("initial", initial)):
    accuracy[name] = ridge_accuracy(
        sentence_features(embedding, tokenizer, train[0]), train[1],
        sentence_features(embedding, tokenizer, dev[0]), dev[1], FLAGS.ridge)
  encoder = inference.load(workdir)  # The newest checkpoint: the final params above.
  sentences = dev[0][:FLAGS.cls_sentences]
  cls = {name: cls_figures(encoder, amos.encoder_params(params), sentences)
         for name, params in (("final", final_params), ("initial", initial_params))}
  return {"workdir": workdir, "step": step,
          "objective": dict(config.objective), "generator": dict(config.model.generator),
          "bands": band_figures(initial, final, ranks, [int(b) for b in FLAGS.bands]),
          "probe_accuracy": accuracy, "cls": cls, "last_eval": last_eval(workdir)}


def read_sst2(name: str, limit: int = 0):
  """(sentences, labels) of a `sentence<TAB>label` file with a header."""
  with open(os.path.join(FLAGS.sst2_dir, f"{name}.tsv"), encoding="utf-8") as f:
    rows = [line.rstrip("\n").split("\t") for line in f][1:]
  rows = rows[:limit] if limit else rows
  return [row[0] for row in rows], np.array([int(row[1]) for row in rows])


def main(argv):
  del argv
  probe = (read_sst2("train", FLAGS.probe_train), read_sst2("dev"))
  results = [diagnose(workdir, probe) for workdir in FLAGS.workdirs]
  print("| workdir | step | band | tokens | relative drift | norm initial -> final |")
  print("| --- | --- | --- | --- | --- | --- |")
  for result in results:
    for band in result["bands"]:
      print(f"| {os.path.basename(result['workdir'])} | {result['step']} | {band['band']} | "
            f"{band['tokens']} | {band['relative_drift']:.3f} | "
            f"{band['initial_norm']:.3f} -> {band['final_norm']:.3f} |")
  print()
  print("| workdir | probe (final) | probe (initial) | [CLS] mean cosine, spread (final) | "
        "(initial) | held-out figures |")
  print("| --- | --- | --- | --- | --- | --- |")
  for result in results:
    figures = ", ".join(f"{k.removeprefix('eval/')} {v:.3f}"
                        for k, v in sorted(result["last_eval"].items()) if k != "step")
    cls = {name: f"{c['mean_cosine']:.3f}, {c['spread']:.3f}" for name, c in result["cls"].items()}
    print(f"| {os.path.basename(result['workdir'])} | "
          f"{result['probe_accuracy']['final']:.3f} | "
          f"{result['probe_accuracy']['initial']:.3f} | {cls['final']} | {cls['initial']} | "
          f"{figures} |")
  if FLAGS.out:
    atomic_file.write_json(FLAGS.out, results)


if __name__ == "__main__":
  app.run(main)
