"""GLUE fine-tuning and evaluation of a pretrained amos_jax encoder; the preset is the task.

python -m amos_jax.main --config=configs/glue.py:sst2 \
  --config.init_checkpoint=/ckpt/amos_small --config.data_dir=/data/glue --workdir=/tmp/sst2
Tasks: cola, sst2, mrpc, stsb (or sts-b), qqp, mnli, qnli, rte, wnli; and, not GLUE, agnews
(AG News topic classification; data_dir holding AGNews/train.tsv and AGNews/dev.tsv).

`init_checkpoint` is a pretraining workdir (its config.json, tokenizer.model and newest
checkpoint are read) or an export directory (amos_jax.export). With `random_init=True` only
its model config and tokenizer are used: the random-init baseline of the same size.
With `eval_only=True` it is a fine-tuned export (e.g. <workdir>/seed_0/best) that is scored on
the dev split(s) and nothing is trained.

Recipe fields left at None take the recipe for the encoder's size: the task's (base-size,
AMOS.md, amos_jax/glue/tasks.py) from hidden size 768, a small-encoder one below
(amos_jax/finetune/recipes.py); results.json records which ran.
"""

import ml_collections

from configs import finetuning


def get_config(task=None):
  """The fine-tuning config of one GLUE task."""
  if not task:
    raise ValueError("Name the GLUE task after the file: configs/glue.py:sst2 (or cola, mrpc, "
                     "stsb, qqp, mnli, qnli, rte, wnli).")
  config = ml_collections.ConfigDict()
  config.task = task.lower().replace("-", "")
  config.init_checkpoint = ""  # Pretraining workdir or export directory; see above.
  config.random_init = False  # Keep init_checkpoint's size and tokenizer, not its weights.
  # A pretraining workdir's checkpoint step to start from; 0: its newest.
  config.init_checkpoint_step = 0
  config.eval_only = False  # Score the fine-tuned export init_checkpoint on dev; no training.

  config.source = "tsv"  # "tsv" (GLUE download layout) or "tfds" (prepared glue/<task>).
  config.data_dir = ""  # Holds CoLA/, SST-2/, ... each with train.tsv, dev.tsv.
  config.tfds_data_dir = ""  # Empty: the TFDS default.
  config.max_train_examples = 0  # A fixed random subset for quick runs; 0 = all.
  config.max_eval_examples = 0  # The first N of each dev split; 0 = all.

  config.seq_len = 128  # [CLS] a [SEP] b [SEP], truncated longest-first.
  finetuning.add_training_fields(config)
  config.eval_batch_size = 64
  config.log_every_steps = 50
  return config
