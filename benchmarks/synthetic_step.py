"""The pretraining step on a random batch, as train_step.py and profile_step.py run it."""

import jax
import numpy as np

from amos_jax import config_validation
from amos_jax import special_tokens
from amos_jax.train import build as build_lib
from amos_jax.train import step as step_lib


def random_batch(config, rng):
  ids = rng.integers(len(special_tokens.NEVER_MASKED), config.model.vocab_size,
                     size=(config.batch_size, config.seq_len), dtype=np.int32)
  ids[:, 0], ids[:, -1] = special_tokens.CLS_ID, special_tokens.SEP_ID
  return {"input_ids": ids}


def prepare(config):
  """(pretraining, fresh state, sharded random batch, seed key) for `config`'s train step."""
  config_validation.validate(config, jax.device_count())  # A mistyped flag, named at once.
  pretraining = build_lib.build(config)
  state = build_lib.initial_state(pretraining, config)
  batch = step_lib.shard_batch(random_batch(config, np.random.default_rng(0)), pretraining.mesh)
  return pretraining, state, batch, build_lib.step_seed_key(config)
