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
  config.num_train_steps = 300
  config.batch_size = 16
  config.seq_len = 64
  config.log_every_steps = 20
  config.eval_every_steps = 100
  config.checkpoint_every_steps = 100
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 30
  return default.apply_preset(config, preset)
