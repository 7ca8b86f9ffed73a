"""PyTorch port of an amos_jax encoder (AMOS/ELECTRA discriminator) for transformers.

Copied into every Hugging Face export by amos_jax (amos_jax/formats/hf_export.py); it
computes what amos_jax/models/transformer.py and classifier.py compute:
  token + learned absolute position (+ token-type) embeddings, LayerNorm, dropout (and a
  projection when the embeddings are narrower than the hidden size);
  per layer (post-LN): x = LN(x + attention(x)); x = LN(x + FFN(x)), FFN with exact GELU;
  attention with a query/value bias but no key bias (softmax ignores it), plus one
  bucketed relative position bias shared by all layers (the AMOS authors' buckets or T5's);
  the GLUE head of the AMOS/COCO-LM authors: [CLS], dropout, dense, tanh or GELU, dropout,
  projection.

  model = AutoModel.from_pretrained(path, trust_remote_code=True)
  model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
"""

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from .configuration_amos_jax import AmosJaxConfig


def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int,
                             max_distance: int) -> torch.Tensor:
  """T5 bidirectional bucketing: exact buckets for small offsets, log-spaced up to
  max_distance; the same float32 steps as amos_jax, so both pick the same buckets."""
  num_buckets //= 2
  buckets = (relative_position > 0).to(torch.long) * num_buckets
  distance = relative_position.abs()
  max_exact = num_buckets // 2
  is_small = distance < max_exact
  log_ratio = torch.log(distance.clamp(min=1).to(torch.float32) / max_exact) / math.log(
      max_distance / max_exact)
  distance_large = max_exact + (log_ratio * (num_buckets - max_exact)).to(torch.long)
  distance_large = distance_large.clamp(max=num_buckets - 1)
  return buckets + torch.where(is_small, distance, distance_large)


def amos_relative_position_bucket(relative_position: torch.Tensor, num_buckets: int,
                                  max_distance: int) -> torch.Tensor:
  """The AMOS/COCO-LM authors' signed buckets (before their shift): distances below
  num_buckets / 4 keep their value, larger ones a float32 ceil of the log ratio."""
  half = num_buckets // 2
  exact = half // 2
  distance = relative_position.abs()
  log_ratio = torch.log(distance.clamp(min=1).to(torch.float32) / exact) / math.log(
      (max_distance - 1) / exact)
  distance_large = exact + torch.ceil(log_ratio * (half - 1 - exact)).to(torch.long)
  distance_large = distance_large.clamp(max=half - 1)
  return torch.sign(relative_position) * torch.where(distance < exact, distance, distance_large)


BUCKET_FUNCTIONS = {"t5_bidirectional": relative_position_bucket,
                    "amos": amos_relative_position_bucket}


class AmosJaxEmbeddings(nn.Module):
  """Token + position (+ token-type) embeddings, LayerNorm, dropout, and a projection up to
  hidden_size when the embeddings are narrower (embedding_size)."""

  def __init__(self, config: AmosJaxConfig):
    super().__init__()
    width = config.embedding_size or config.hidden_size
    self.word_embeddings = nn.Embedding(config.vocab_size, width)
    self.position_embeddings = nn.Embedding(config.max_position_embeddings, width)
    self.token_type_embeddings = (nn.Embedding(config.type_vocab_size, width)
                                  if config.type_vocab_size > 0 else None)
    self.sep_token_id = config.sep_token_id
    self.layer_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
    self.dropout = nn.Dropout(config.hidden_dropout_prob)
    self.projection = (nn.Linear(width, config.hidden_size)
                       if width != config.hidden_size else None)

  def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
    seq_len = input_ids.shape[1]
    if seq_len > self.position_embeddings.num_embeddings:
      raise ValueError(f"Input of {seq_len} tokens is longer than max_position_embeddings="
                       f"{self.position_embeddings.num_embeddings}.")
    x = self.word_embeddings(input_ids) + self.position_embeddings.weight[None, :seq_len]
    if self.token_type_embeddings is not None:
      # Segments as amos_jax derives them: the [SEP] tokens before each position.
      is_sep = (input_ids == self.sep_token_id).to(torch.long)
      types = (torch.cumsum(is_sep, dim=1) - is_sep).clamp(
          max=self.token_type_embeddings.num_embeddings - 1)
      x = x + self.token_type_embeddings(types)
    x = self.dropout(self.layer_norm(x))
    return self.projection(x) if self.projection is not None else x


class AmosJaxRelativePositionBias(nn.Module):
  """One learned bias per (bucket, head), shared by every layer."""

  def __init__(self, config: AmosJaxConfig):
    super().__init__()
    function = config.relative_position_bucket_function
    if function not in BUCKET_FUNCTIONS:
      raise ValueError(f"relative_position_bucket_function {function!r} is not one of "
                       f"{sorted(BUCKET_FUNCTIONS)}.")
    self.bucket = BUCKET_FUNCTIONS[function]
    self.num_buckets = config.relative_position_buckets
    self.max_distance = config.relative_position_max_distance
    self.weight = nn.Parameter(torch.empty(self.num_buckets, config.num_attention_heads))
    # "amos" ids are shifted by their minimum over the whole position table.
    self.shift = 0
    if function == "amos":
      # On the CPU explicitly: transformers builds the module on the meta device.
      offsets = torch.arange(-(config.max_position_embeddings - 1),
                             config.max_position_embeddings, device="cpu")
      self.shift = -int(self.bucket(offsets, self.num_buckets, self.max_distance).min())

  def forward(self, seq_len: int) -> torch.Tensor:
    """[1, N, L, L] bias, entry [., n, i, j] for query i and key j."""
    positions = torch.arange(seq_len, device=self.weight.device)
    relative = positions[None, :] - positions[:, None]
    buckets = self.bucket(relative, self.num_buckets, self.max_distance) + self.shift
    return self.weight[buckets].permute(2, 0, 1)[None]


class AmosJaxSelfAttention(nn.Module):
  def __init__(self, config: AmosJaxConfig):
    super().__init__()
    if config.hidden_size % config.num_attention_heads:
      raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of "
                       f"num_attention_heads {config.num_attention_heads}.")
    self.num_heads = config.num_attention_heads
    self.head_dim = config.hidden_size // config.num_attention_heads
    self.query = nn.Linear(config.hidden_size, config.hidden_size)
    # No key bias: it adds the same q . b to all logits of a query, which softmax ignores.
    self.key = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
    self.value = nn.Linear(config.hidden_size, config.hidden_size)
    self.output = nn.Linear(config.hidden_size, config.hidden_size)
    self.attention_dropout = config.attention_probs_dropout_prob
    self.dropout = nn.Dropout(config.hidden_dropout_prob)

  def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    batch, seq_len, hidden = x.shape
    heads = lambda t: t.view(batch, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
    out = F.scaled_dot_product_attention(
        heads(self.query(x)), heads(self.key(x)), heads(self.value(x)), attn_mask=bias,
        dropout_p=self.attention_dropout if self.training else 0.0)
    out = out.transpose(1, 2).reshape(batch, seq_len, hidden)
    return self.dropout(self.output(out))


class AmosJaxLayer(nn.Module):
  """Post-LN block: x = LN(x + attention(x)); x = LN(x + FFN(x))."""

  def __init__(self, config: AmosJaxConfig):
    super().__init__()
    if config.hidden_act != "gelu":
      raise ValueError(f"hidden_act {config.hidden_act!r}: this model implements 'gelu' "
                       "(exact, erf) only.")
    self.attention = AmosJaxSelfAttention(config)
    self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
    self.ffn_in = nn.Linear(config.hidden_size, config.intermediate_size)
    self.ffn_out = nn.Linear(config.intermediate_size, config.hidden_size)
    self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
    self.dropout = nn.Dropout(config.hidden_dropout_prob)

  def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    x = self.attention_norm(x + self.attention(x, bias))
    y = self.dropout(self.ffn_out(F.gelu(self.ffn_in(x), approximate="none")))
    return self.ffn_norm(x + y)


class AmosJaxEncoder(nn.Module):
  def __init__(self, config: AmosJaxConfig):
    super().__init__()
    self.relative_position_bias = (AmosJaxRelativePositionBias(config)
                                   if config.relative_position_buckets > 0 else None)
    self.layer = nn.ModuleList(AmosJaxLayer(config) for _ in range(config.num_hidden_layers))

  def forward(self, x: torch.Tensor, attention_mask: torch.Tensor,
              output_hidden_states: bool) -> tuple[torch.Tensor, tuple | None]:
    # Padded keys get the dtype's lowest value: exp underflows to 0 as in amos_jax's -1e9.
    padding = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    bias = padding
    if self.relative_position_bias is not None:
      bias = self.relative_position_bias(x.shape[1]).to(x.dtype) + padding
    all_hidden = (x,) if output_hidden_states else None
    for layer in self.layer:
      x = layer(x, bias)
      if output_hidden_states:
        all_hidden += (x,)
    return x, all_hidden


class AmosJaxPreTrainedModel(PreTrainedModel):
  config_class = AmosJaxConfig
  config: AmosJaxConfig
  base_model_prefix = "amos"
  _no_split_modules = ["AmosJaxLayer"]

  def _init_weights(self, module):
    """amos_jax's initialisation: N(0, initializer_range) weights, zero biases, unit norms."""
    std = self.config.initializer_range
    if isinstance(module, nn.Linear):
      init.normal_(module.weight, mean=0.0, std=std)
      if module.bias is not None:
        init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
      init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
      init.ones_(module.weight)
      init.zeros_(module.bias)
    elif isinstance(module, AmosJaxRelativePositionBias):
      init.normal_(module.weight, mean=0.0, std=std)


class AmosJaxModel(AmosJaxPreTrainedModel):
  """The encoder: final hidden states [B, L, H]; the [CLS] state is last_hidden_state[:, 0]."""

  def __init__(self, config: AmosJaxConfig):
    super().__init__(config)
    self.embeddings = AmosJaxEmbeddings(config)
    self.encoder = AmosJaxEncoder(config)
    self.post_init()

  def get_input_embeddings(self):
    return self.embeddings.word_embeddings

  def set_input_embeddings(self, value):
    self.embeddings.word_embeddings = value

  def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              output_hidden_states: bool | None = None, return_dict: bool | None = None,
              **kwargs):
    """input_ids [B, L] (right-padded), attention_mask [B, L]: 1 for tokens, 0 for padding."""
    if attention_mask is None:
      attention_mask = torch.ones_like(input_ids)
    output_hidden_states = (output_hidden_states if output_hidden_states is not None
                            else self.config.output_hidden_states)
    return_dict = return_dict if return_dict is not None else self.config.return_dict
    hidden, all_hidden = self.encoder(self.embeddings(input_ids), attention_mask,
                                      bool(output_hidden_states))
    if not return_dict:
      return (hidden,) + ((all_hidden,) if all_hidden is not None else ())
    return BaseModelOutput(last_hidden_state=hidden, hidden_states=all_hidden)


class AmosJaxClassificationHead(nn.Module):
  """[CLS], dropout, dense, tanh (or GELU: classifier_activation), dropout, projection to
  num_labels (1 for regression)."""

  def __init__(self, config: AmosJaxConfig):
    super().__init__()
    dropout = (config.classifier_dropout if config.classifier_dropout is not None
               else config.hidden_dropout_prob)
    self.dropout = nn.Dropout(dropout)
    self.dense = nn.Linear(config.hidden_size, config.hidden_size)
    self.projection = nn.Linear(config.hidden_size, config.num_labels)
    activations = {"tanh": torch.tanh, "gelu": lambda x: F.gelu(x, approximate="none")}
    if config.classifier_activation not in activations:
      raise ValueError(f"classifier_activation {config.classifier_activation!r} is not one of "
                       f"{sorted(activations)}.")
    self.activation = activations[config.classifier_activation]

  def forward(self, hidden: torch.Tensor) -> torch.Tensor:
    x = self.activation(self.dense(self.dropout(hidden[:, 0])))
    return self.projection(self.dropout(x))


class AmosJaxForSequenceClassification(AmosJaxPreTrainedModel):
  def __init__(self, config: AmosJaxConfig):
    super().__init__(config)
    self.num_labels = config.num_labels
    self.amos = AmosJaxModel(config)
    self.classifier = AmosJaxClassificationHead(config)
    self.post_init()

  def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
              return_dict: bool | None = None, **kwargs):
    """Logits [B, num_labels]; with labels, the loss of config.problem_type (cross-entropy for
    classes, mean squared error for regression when num_labels is 1)."""
    return_dict = return_dict if return_dict is not None else self.config.return_dict
    outputs = self.amos(input_ids, attention_mask, output_hidden_states=output_hidden_states,
                        return_dict=True)
    logits = self.classifier(outputs.last_hidden_state)
    loss = None
    if labels is not None:
      problem_type = self.config.problem_type or (
          "regression" if self.num_labels == 1 else "single_label_classification")
      if problem_type == "regression":
        loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(-1))
      elif problem_type == "single_label_classification":
        loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
      else:
        loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if not return_dict:
      output = (logits,) + ((outputs.hidden_states,) if outputs.hidden_states else ())
      return ((loss,) + output) if loss is not None else output
    return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["AmosJaxModel", "AmosJaxForSequenceClassification", "AmosJaxPreTrainedModel"]
