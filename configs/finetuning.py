"""Fine-tuning fields every task config shares (configs/glue.py, configs/squad.py)."""

import ml_collections
from ml_collections import config_dict


def add_training_fields(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Seeds, recipe overrides, the authors' AdamW, dropout and evaluation cadence."""
  # AMOS reports the median of 5 seeds; the seed sets the head init, data order and dropout.
  config.seeds = (0, 1, 2, 3, 4)
  # None: the recipe for the encoder's size (amos_jax/finetune/recipes.py).
  config.batch_size = config_dict.placeholder(int)  # Global, across all devices.
  config.learning_rate = config_dict.placeholder(float)
  config.num_epochs = config_dict.placeholder(int)
  config.warmup_fraction = config_dict.placeholder(float)  # Of all steps; then linear decay.
  # The authors' AdamW; they do not clip gradients.
  config.optimizer = ml_collections.ConfigDict(dict(
      b1=0.9, b2=0.98, eps=1e-6, weight_decay=0.01))
  config.dropout_rate = 0.1  # The encoder's hidden states and the head.
  config.attention_dropout_rate = 0.1  # The encoder's attention probabilities.
  config.eval_every_steps = 0  # 0: after every epoch (and always at the end).
  return config
