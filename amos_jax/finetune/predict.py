"""Host-side batching around the data-parallel step: global rows in, host numpy out."""

import jax
import numpy as np
from jax.experimental import multihost_utils

from amos_jax.train import step as train_step_lib


def host_rows(global_rows: np.ndarray) -> np.ndarray:
  """This process's contiguous slice of a global batch (every host holds the whole batch)."""
  per_host = global_rows.shape[0] // jax.process_count()
  start = jax.process_index() * per_host
  return global_rows[start:start + per_host]


def host_copy(params):
  """Replicated params as host numpy (every host holds all of them)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), params)


def predict(predict_step, params, input_ids: np.ndarray, batch_size: int, mesh):
  """The model's outputs (a tree of batch-leading arrays) for every row, as host numpy.

  Rows are run in batches padded to `batch_size`; the padding rows are dropped again.
  """
  num_rows = input_ids.shape[0]
  padded = -(-num_rows // batch_size) * batch_size
  # Filler rows repeat the first row: never all padding, whatever the tokenizer's ids.
  rows = np.repeat(input_ids[:1], padded, axis=0).astype(np.int32)
  rows[:num_rows] = input_ids
  outputs = []
  for start in range(0, padded, batch_size):
    batch = train_step_lib.shard_batch(host_rows(rows[start:start + batch_size]), mesh)
    outputs.append(jax.tree.map(lambda x: multihost_utils.process_allgather(x, tiled=True),
                                predict_step(params, batch)))
  return jax.tree.map(lambda *parts: np.concatenate(parts)[:num_rows], *outputs)
