"""Configuration of an amos_jax encoder (AMOS/ELECTRA discriminator) for transformers.

Copied into every Hugging Face export by amos_jax (amos_jax/formats/hf_export.py); loads
with `AutoConfig.from_pretrained(path, trust_remote_code=True)`.
"""

from transformers import PreTrainedConfig


class AmosJaxConfig(PreTrainedConfig):
  """Hyperparameters of the post-LN encoder in modeling_amos_jax.py.

  The relative position bias is one learned bias per (bucket, head), shared by all layers,
  with the AMOS authors' buckets (`relative_position_bucket_function="amos"`) or T5's
  ("t5_bidirectional"); `relative_position_buckets=0` turns it off. `type_vocab_size` > 0
  adds token-type embeddings (segments counted by `sep_token_id`), `embedding_size` > 0
  narrower embeddings projected up to hidden_size.
  """
  model_type = "amos_jax"

  vocab_size: int = 32768
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"  # Exact (erf) GELU; the only activation the model implements.
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  classifier_dropout: float | None = None  # None: hidden_dropout_prob.
  max_position_embeddings: int = 512
  relative_position_buckets: int = 64
  relative_position_max_distance: int = 128
  relative_position_bucket_function: str = "t5_bidirectional"
  layer_norm_eps: float = 1e-5
  type_vocab_size: int = 0
  sep_token_id: int | None = 3
  embedding_size: int = 0
  classifier_activation: str = "tanh"
  initializer_range: float = 0.02
  pad_token_id: int | None = 0
  finetuning_task: str | None = None
  tie_word_embeddings: bool = False


__all__ = ["AmosJaxConfig"]
