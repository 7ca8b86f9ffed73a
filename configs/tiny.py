"""Tiny AMOS for CPU tests and the quickstart on the bundled sample.

python -m amos_jax.main --config=configs/tiny.py --workdir=/tmp/amos_tiny
Presets: configs/tiny.py:electra, :uniform, :no_reversal.
"""

from configs import default


def get_config(preset=None):
  config = default.get_base_config("tiny")
  config.model.vocab_size = 4096
  config.model.init_std = 0.1  # ~0.8 / sqrt(64): with 0.02 the tiny model learns very slowly.
  config.model.max_position_embeddings = 128
  config.model.relative_position_buckets = 16
  config.model.relative_position_max_distance = 64
  # MLMs sit at the unigram distribution for the first ~800 steps, then learn from context
  # (MLM loss 5.9 -> 4.2 nats by step 1800 on the sample); 1500 steps show both phases.
  config.num_train_steps = 1500
  config.batch_size = 32
  config.seq_len = 64
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 150
  return default.apply_preset(config, preset)
