"""AMOS large: 24x1024 discriminator, 8-block generator with MLMs at depths 4/6/8.

python -m amos_jax.main --config=configs/large.py --workdir=/tmp/amos_large
Presets: configs/large.py:electra, :uniform, :no_reversal.
"""

from configs import default


def get_config(preset=None):
  config = default.get_base_config("large")
  config.model.dtype = "bfloat16"
  config.batch_size = 2048
  config.optimizer.learning_rate = 2e-4
  return default.apply_preset(config, preset)
