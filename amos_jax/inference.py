"""Runs an export (amos_jax.export): text to hidden states and pooled vectors, or predictions.

  encoder = inference.load("/tmp/amos_export")
  out = encoder.encode(["A first sentence.", ("A premise.", "A hypothesis.")])
  out.hidden_states  # [N, L, H] float32, zero past each row's length
  out.pooled         # [N, H]: the final hidden state of [CLS]
  encoder.predict(["a fine movie"]).labels  # a fine-tuned GLUE export only
  qa.answer("Who came?", "Mr. Bennet came.").text  # a fine-tuned SQuAD export only

Inputs are tokenized as `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` (glue.features, so
inference matches fine-tuning), truncated to max_length (max_position_embeddings by
default), sorted by length, and run in batches of a fixed size padded to the smallest of a
few bucket lengths: the jitted forward compiles once per bucket, never per input.
"""

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import encoder_tree
from amos_jax.formats import registry
from amos_jax.glue import data
from amos_jax.glue import features
from amos_jax.models import classifier
from amos_jax.models import span

DEFAULT_BUCKETS = (32, 64, 128, 256, 512)

Text = str | tuple[str, str]


class Encoded(NamedTuple):
  """Encoder outputs for N inputs, in input order."""
  hidden_states: np.ndarray  # [N, L, H] float32, L the longest input; zeros past `lengths`.
  lengths: np.ndarray  # [N] int32: tokens per input, [CLS] and [SEP] included.
  pooled: np.ndarray  # [N, H] float32: the final hidden state of [CLS].


class Predictions(NamedTuple):
  """Head outputs for N inputs; class fields are None for regression and vice versa."""
  logits: np.ndarray  # [N, num_labels] float32.
  label_ids: np.ndarray | None  # [N] int32.
  labels: list[str] | None
  probabilities: np.ndarray | None  # [N, num_labels] softmax.
  scores: np.ndarray | None  # [N] float32 regression outputs.


class LoadedEncoder:
  """An export in memory: the plain Flax module, its params, tokenizer and config."""

  def __init__(self, module, params, tokenizer: tokenizer_lib.Tokenizer,
               config: ml_collections.ConfigDict, task: encoder_tree.TaskInfo | None,
               buckets: Sequence[int] = DEFAULT_BUCKETS, max_length: int | None = None):
    self.module = module
    self.params = jax.device_put(params)
    self.tokenizer = tokenizer
    self.config = config
    self.task = task
    self.max_length = min(max_length or config.max_position_embeddings,
                          config.max_position_embeddings)
    self.buckets = tuple(sorted({b for b in buckets if b < self.max_length} |
                                {self.max_length}))
    # Incremented while tracing only: how many programs the forward passes compiled.
    self.trace_count = 0
    self._encode_fn = jax.jit(self._encode_batch)
    self._logits_fn = jax.jit(self._logits_batch)

  def _hidden(self, params, token_ids_BxL, padding_mask_BxL):
    if isinstance(self.module, (classifier.SequenceClassifier, span.SpanExtractor)):
      return self.module.apply({"params": params}, token_ids_BxL, padding_mask_BxL,
                               method=type(self.module).encode)
    return self.module.apply({"params": params}, token_ids_BxL, padding_mask_BxL)

  def _encode_batch(self, params, token_ids_BxL):
    self.trace_count += 1
    hidden_BxLxH = self._hidden(params, token_ids_BxL,
                                token_ids_BxL != self.tokenizer.special.pad)
    hidden_BxLxH = hidden_BxLxH.astype(jnp.float32)
    return hidden_BxLxH, hidden_BxLxH[:, 0]

  def _logits_batch(self, params, token_ids_BxL):
    self.trace_count += 1
    return self.module.apply({"params": params}, token_ids_BxL,
                             token_ids_BxL != self.tokenizer.special.pad)

  def tokenize(self, texts: Sequence[Text]) -> list[list[int]]:
    """Token ids with [CLS]/[SEP], truncated to max_length; not padded."""
    if isinstance(texts, str):
      raise TypeError("Pass a list of texts (or of (text_a, text_b) pairs), not one string.")
    rows = []
    for text in texts:
      text_a, text_b = (text, None) if isinstance(text, str) else text
      rows.append(features.encode_example(
          self.tokenizer, data.Example(text_a, text_b, None), self.max_length))
    return rows

  def _batches(self, rows: list[list[int]], batch_size: int):
    """Yields (input indices, [batch_size, bucket] ids) over rows sorted by length."""
    order = np.argsort([len(row) for row in rows], kind="stable")
    for start in range(0, len(rows), batch_size):
      indices = order[start:start + batch_size]
      longest = max(len(rows[i]) for i in indices)
      bucket = next(b for b in self.buckets if b >= longest)
      special = self.tokenizer.special
      token_ids = np.full((batch_size, bucket), special.pad, np.int32)
      # Filler rows hold [CLS] [SEP] so no row is all padding.
      token_ids[:, :2] = (special.cls, special.sep)
      for row, index in enumerate(indices):
        token_ids[row, :] = special.pad
        token_ids[row, :len(rows[index])] = rows[index]
      yield indices, token_ids

  def encode(self, texts: Sequence[Text], *, batch_size: int = 32) -> Encoded:
    """Hidden states and pooled vectors of texts or (text_a, text_b) pairs."""
    rows = self.tokenize(texts)
    lengths = np.array([len(row) for row in rows], np.int32)
    hidden_size = self.config.hidden_size
    hidden = np.zeros((len(rows), int(lengths.max(initial=0)), hidden_size), np.float32)
    pooled = np.zeros((len(rows), hidden_size), np.float32)
    for indices, token_ids in self._batches(rows, batch_size):
      batch_hidden, batch_pooled = jax.device_get(self._encode_fn(self.params, token_ids))
      for row, index in enumerate(indices):
        hidden[index, :lengths[index]] = batch_hidden[row, :lengths[index]]
        pooled[index] = batch_pooled[row]
    return Encoded(hidden, lengths, pooled)

  def predict(self, texts: Sequence[Text], *, batch_size: int = 32) -> Predictions:
    """Classes with probabilities, or regression scores, from a fine-tuned export's head."""
    if self.task is None:
      raise ValueError("This export has no task head: it is a pretrained encoder. Use encode, "
                       "or export a fine-tuned model.")
    if self.task.head == encoder_tree.SPAN_HEAD:
      raise ValueError("This is a question-answering export: use answer(question, context).")
    rows = self.tokenize(texts)
    logits = np.zeros((len(rows), self.task.num_labels), np.float32)
    for indices, token_ids in self._batches(rows, batch_size):
      logits[indices] = jax.device_get(self._logits_fn(self.params, token_ids))[:len(indices)]
    if self.task.is_regression:
      return Predictions(logits, None, None, None, logits[:, 0])
    label_ids = logits.argmax(axis=-1).astype(np.int32)
    probabilities = np.asarray(jax.nn.softmax(logits, axis=-1))
    labels = [self.task.label_names[i] for i in label_ids]
    return Predictions(logits, label_ids, labels, probabilities, None)

  def answer(self, question: str, context: str, **options):
    """The answer span of `question` in `context` ("" if unanswerable), from a fine-tuned
    SQuAD export; options and the returned Prediction: amos_jax.squad.inference.answer."""
    from amos_jax.squad import inference as squad_inference  # SQuAD exports only.
    return squad_inference.answer(self, question, context, **options)


def load(path: str, *, attention_implementation: str | None = None,
         dtype: str | None = None, buckets: Sequence[int] = DEFAULT_BUCKETS,
         max_length: int | None = None) -> LoadedEncoder:
  """Loads and checks a checkpoint directory for inference.

  Args:
    path: any layout amos_jax.formats reads: an export in either format (the Hugging Face
      one needs no torch), or a pretraining workdir (its newest checkpoint's encoder).
    attention_implementation: overrides the trained setting, which may name a GPU-only
      kernel; None lets XLA pick for the device at hand.
    dtype: compute dtype override, e.g. "float32" to run a bf16-trained model on CPU.
    buckets: padded lengths the forward pass compiles for; max_length is always one of them.
    max_length: inputs are truncated to this many tokens, specials included; None (and the
      upper limit) is max_position_embeddings.

  Raises:
    FileNotFoundError: a file of the export is missing.
    ValueError: naming the file and the mismatch, when config.json, the parameter tree and
      the tokenizer disagree, or a file is truncated or foreign.
  """
  checkpoint = registry.load(path)
  model_config = checkpoint.model_config
  model_config.attention_implementation = attention_implementation
  if dtype is not None:
    model_config.dtype = dtype
  module = encoder_tree.build_module(model_config, checkpoint.task)
  return LoadedEncoder(module, checkpoint.params, checkpoint.tokenizer, model_config,
                       checkpoint.task, buckets, max_length)
