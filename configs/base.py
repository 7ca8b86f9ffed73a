"""AMOS base (the paper's base): 12x768 discriminator, 8-block generator, MLMs at 4/6/8.

python -m amos_jax.main --config=configs/base.py --workdir=/tmp/amos_base
Presets: configs/base.py:electra, :uniform, :no_reversal.
"""

from configs import default


def get_config(preset=None):
  config = default.get_base_config("base")
  config.model.dtype = "bfloat16"
  return default.apply_preset(config, preset)
