"""SQuAD fine-tuning and evaluation of a pretrained amos_jax encoder; the preset is the version.

python -m amos_jax.main --config=configs/squad.py --config.init_checkpoint=/ckpt/amos_small \
  --config.data_dir=/data/squad --workdir=/tmp/squad2
configs/squad.py (or :2.0) reads train-v2.0.json and dev-v2.0.json from data_dir, with
unanswerable questions; configs/squad.py:1.1 reads train-v1.1.json and dev-v1.1.json.
With source='tfds' a prepared TFDS squad/v2.0 (or v1.1) is read instead (never downloaded).

`init_checkpoint`, `random_init` and `eval_only` work as in configs/glue.py (eval_only takes
a fine-tuned SQuAD export such as <workdir>/seed_0/best). Recipe fields left at None take the
recipe for the encoder's size: AMOS's SQuAD recipe (batch 16, lr 2e-5, 3 epochs, warmup 10%)
from hidden size 768, a small-encoder one below (amos_jax/finetune/recipes.py).
"""

import ml_collections

from configs import finetuning


def get_config(version=None):
  """The fine-tuning config of SQuAD v2.0 (default) or v1.1."""
  config = ml_collections.ConfigDict()
  config.task = "squad"
  config.version = version or "2.0"  # "2.0" (with unanswerable questions) or "1.1".
  config.init_checkpoint = ""  # Pretraining workdir or export directory.
  config.random_init = False  # Keep init_checkpoint's size and tokenizer, not its weights.
  # A pretraining workdir's checkpoint step to start from; 0: its newest.
  config.init_checkpoint_step = 0
  config.eval_only = False  # Score the fine-tuned export init_checkpoint on dev; no training.

  config.source = "json"  # "json" (the official files) or "tfds" (prepared squad/v<version>).
  config.data_dir = ""  # Holds train-v2.0.json and dev-v2.0.json (or the v1.1 pair).
  config.tfds_data_dir = ""  # Empty: the TFDS default.
  config.max_train_examples = 0  # A fixed random subset of the questions; 0 = all.
  config.max_eval_examples = 0  # The first N dev questions; 0 = all.

  # Windows of [CLS] question [SEP] context [SEP], as the reference implementations.
  config.seq_len = 384
  config.doc_stride = 128  # Context tokens between the starts of consecutive windows.
  config.max_query_length = 64  # Question tokens kept.
  # Post-processing.
  config.n_best_size = 20  # Start and end positions considered per window.
  config.max_answer_length = 30  # Tokens.
  config.null_score_threshold = 0.0  # Answer "" when no-answer wins by more than this.

  finetuning.add_training_fields(config)
  config.eval_batch_size = 64
  config.log_every_steps = 50
  return config
