"""Model FLOPs per token, counted as what runs (MaxText's way)."""

from amos_jax import objective
from amos_jax.train import flops
from configs import small


def test_sampled_embeddings_count_only_the_backward_product_and_only_when_adversarial():
  config = small.get_config()
  slots_per_token = objective.max_predictions(128, 0.15) / 128
  vocab, hidden = config.model.vocab_size, config.model.hidden_size
  counted = flops.flops_per_token(config)
  assert counted["one_hot_embedding"] == 2 * vocab * hidden * slots_per_token  # g @ E^T.
  assert flops.flops_per_token(small.get_config("electra"))["one_hot_embedding"] == 0
  # Each block: 6 x (4 H^2 + 2 H F) parameters' FLOPs plus 12 L H of attention.
  block = 6 * (4 * hidden**2 + 2 * hidden * config.model.ffn_size) + 12 * 128 * hidden
  assert counted["generator"] == 8 * block
  assert counted["discriminator"] == 12 * block + 6 * hidden
