"""AMOS mini: a CPU-hour pretraining budget (4x128 discriminator, 3-block generator).

python -m amos_jax.main --config=configs/mini.py --workdir=/tmp/amos_mini \\
  --config.data.text_files='../shared/data/wikipedia/*.txt.gz,../shared/data/books/*.txt.gz'
Presets: configs/mini.py:electra, :uniform, :no_reversal.

Small-budget recipe: ELECTRA-Small's batch 128 x 128 with 15% masking, and Cramming's
lessons (no dropout while pretraining, a short warmup, a linear decay that reaches 0 at the
end of the budget, a larger learning rate). A starting point: the sizes and rates here are
not yet tuned by measurement on this project's quality benchmark (benchmarks/quality.py).
The step budget is about an hour of the AMOS preset on the 2-core CPU: `python
benchmarks/train_step.py --config=configs/mini.py` measured 6,561 tokens/s (2.50 s a step;
ELECTRA 9,612 tokens/s), so 1,500 steps of 128 x 128 take about 62 minutes.
"""

from configs import default


def get_config(preset=None):
  config = default.get_base_config("mini")
  config.model.vocab_size = 8192  # The three MLM heads and the sample cost O(vocab).
  config.model.init_std = 0.05  # ~0.6 / sqrt(128); 0.02 learns slowly this narrow.
  config.model.dropout_rate = 0.0
  config.model.attention_dropout_rate = 0.0
  config.model.max_position_embeddings = 128
  config.model.relative_position_buckets = 32
  config.model.relative_position_max_distance = 128
  config.batch_size = 128
  config.seq_len = 128
  config.num_train_steps = 1500
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 150
  return default.apply_preset(config, preset)
