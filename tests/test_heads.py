"""Output heads under bf16 compute: logits are accumulated and returned in float32."""

import jax
import jax.numpy as jnp
import numpy as np

from amos_jax.models import classifier
from amos_jax.models.amos import AmosModel, init_params
from tests import helpers


def _not_all_bf16(x) -> bool:
  """True when some value is not representable in bf16, i.e. was not rounded to it."""
  x = np.asarray(x)
  return bool((x != x.astype(jnp.bfloat16).astype(np.float32)).any())


def test_mlm_and_rtd_logits_are_float32_accumulated_with_bf16_compute():
  config = helpers.tiny_config(dtype="bfloat16")
  model = AmosModel(config.model)
  params = init_params(model, jax.random.key(0), config.seq_len)
  hidden = jax.random.normal(jax.random.key(1), (2, 5, config.model.hidden_size))
  mlm_logits = model.apply({"params": params}, hidden, method=AmosModel.mlm_logits)
  ids = jnp.asarray(helpers.text_batch(2, config.seq_len, config.model.vocab_size)["input_ids"])
  embeddings = model.apply({"params": params}, ids, method=AmosModel.embed)
  rtd_logits = model.apply({"params": params}, embeddings, ids > 0,
                           method=AmosModel.discriminate)
  for logits in (mlm_logits, rtd_logits):
    assert logits.dtype == jnp.float32
    assert _not_all_bf16(logits)


def test_classifier_logits_are_float32_accumulated_with_bf16_compute():
  config = helpers.tiny_config(dtype="bfloat16")
  model = classifier.SequenceClassifier(config.model, num_labels=3)
  ids = jnp.asarray(helpers.text_batch(4, config.seq_len, config.model.vocab_size)["input_ids"])
  params = model.init(jax.random.key(0), ids, ids > 0)["params"]
  logits = model.apply({"params": params}, ids, ids > 0)
  assert logits.dtype == jnp.float32
  assert _not_all_bf16(logits)
