"""AMOS mini: a CPU-hour pretraining budget (4x128 discriminator, 3-block generator).

python -m amos_jax.main --config=configs/mini.py --workdir=/tmp/amos_mini \\
  --config.data.text_files='../shared/data/wikipedia/*.txt.gz,../shared/data/books/*.txt.gz'
Presets: configs/mini.py:electra, :uniform, :no_reversal.

Small-budget recipe: ELECTRA-Small's sequence length 128 and 15% masking, and Cramming's
lessons (no dropout while pretraining, a short warmup, a linear decay that reaches 0 at the
end of the budget). Batch 32, not ELECTRA-Small's 128: at 128 x 128 the generator sat at
the unigram distribution for all of its 1,500 steps (docs/quality.md), so the
tokens now come in 4x smaller steps, and the peak rate drops by sqrt(4) with the batch.
init_std 0.07 matches tiny's per-width scale (0.8 / sqrt(hidden)): the tied output logits'
range grows with the embedding norm. The relative position bias learns 10x faster than the
rest: after 1,000 steps at 1e-3 its largest entry was 0.4, attention still uniform and the
MLM still at the unigram; with 10x it was 2.4 by step 700 and the MLM left the unigram by
step 900 (train/optimizer.py). 16,000 steps (65.5M tokens) took 58-69 minutes of the ELECTRA
preset on the fastest 2-core CPU measured (15,800-18,800 tokens/s at batch 32; the slowest
ran at 4,700, where they are 3.9 hours); AMOS runs about 1.5x slower per token. 4,000 steps
tied random init on SST-2 and 16,000 led it by 0.6 points (docs/quality.md).
"""

from configs import default


def get_config(preset=None):
  config = default.get_base_config("mini")
  config.model.vocab_size = 8192  # The three MLM heads and the sample cost O(vocab).
  config.model.init_std = 0.07  # ~0.8 / sqrt(128), as tiny; 0.02 learns slowly this narrow.
  config.model.dropout_rate = 0.0
  config.model.attention_dropout_rate = 0.0
  config.model.max_position_embeddings = 128
  config.model.relative_position_buckets = 32
  config.model.relative_position_max_distance = 128
  config.batch_size = 32
  config.seq_len = 128
  config.num_train_steps = 16000
  config.log_every_steps = 100
  config.eval_every_steps = 4000
  config.checkpoint_every_steps = 1000
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 300
  config.optimizer.position_bias_lr_multiplier = 10.0  # See above.
  return default.apply_preset(config, preset)
