"""AMOS small: 12x256 discriminator, 8-block generator with MLMs at depths 4/6/8.

python -m amos_jax.main --config=configs/small.py --workdir=/tmp/amos_small
Presets: configs/small.py:electra, :uniform, :no_reversal.
"""

from configs import default


def get_config(preset=None):
  config = default.get_base_config("small")
  config.batch_size = 128
  config.seq_len = 128
  config.optimizer.learning_rate = 1e-3
  return default.apply_preset(config, preset)
