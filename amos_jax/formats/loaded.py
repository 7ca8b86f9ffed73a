"""What reading any checkpoint format gives: one record, whatever the layout on disk."""

from typing import Any, NamedTuple

import ml_collections

from amos_jax.formats import encoder_tree


class Checkpoint(NamedTuple):
  """A checkpoint directory, read and checked."""
  kind: str  # The reading module's KIND, e.g. "export"; results.json records it.
  path: str
  model_config: ml_collections.ConfigDict  # TextEncoder hyperparameters, no generator.
  tokenizer: Any  # data.tokenizer.Tokenizer or another tokenizer with the same methods.
  params: dict | None  # TextEncoder tree, or {encoder, head} with a task; None: not read.
  task: encoder_tree.TaskInfo | None = None  # The head's task of a fine-tuned checkpoint.
  step: int | None = None  # Pretraining step of a workdir checkpoint.
  notes: tuple[str, ...] = ()  # What reading dropped, converted or left to initialise.

  @property
  def encoder_params(self) -> dict | None:
    """The TextEncoder tree, with or without a head around it."""
    if self.params is None or self.task is None:
      return self.params
    return self.params["encoder"]
