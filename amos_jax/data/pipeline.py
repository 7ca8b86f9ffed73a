"""Train and eval batches from prepared shards: deterministic, resumable, topology-free.

The order is index-based instead of a tf.data shuffle buffer, so that the global batch at
step s is a pure function of (data, seed, s, global batch size):

  global example j = s * B + k   (k in [0, B))
  epoch = j // N,  row = permutation(seed, epoch)[j % N]

Each host computes only its own rows k in [process_index * b, (process_index + 1) * b),
b = B // process_count, and gathers them from memory-mapped shards. So 1, 2 or 4 hosts
see slices of the same global batch, and resuming needs only the step: the training loop
saves its step and passes it back as `start_step`. tf.data runs the gathers in parallel
and prefetches; TF never sees a GPU. Where TensorFlow is not installed (accelerator images
often lack it, and its wheel is too large to bring along), a thread pool runs the same
gathers: the batches are the same, since each is a pure function of its step.
"""

import collections
import concurrent.futures
import itertools
import threading
from typing import Callable, Iterator

import numpy as np

try:
  import tensorflow as tf
except ImportError:
  tf = None

from amos_jax import errors
from amos_jax.data import tf_setup
from amos_jax.data.prepared import PreparedData


class _Rows:
  """The rows of one split across its memory-mapped shards, gathered by global row id."""

  def __init__(self, prepared: PreparedData, split: str):
    self.shards = prepared.shards(split)
    self.starts = np.cumsum([0] + [len(s) for s in self.shards])
    self.num_rows = int(self.starts[-1])
    self.seq_len = prepared.seq_len
    self.pad_id = prepared.special.pad

  def gather(self, row_ids: np.ndarray) -> np.ndarray:
    """int32 [len(row_ids), seq_len]; ids outside [0, num_rows) give [PAD] rows."""
    out = np.full([len(row_ids), self.seq_len], self.pad_id, np.int32)
    shard_of = np.searchsorted(self.starts, row_ids, side="right") - 1
    for i, shard in enumerate(self.shards):
      picked = (shard_of == i) & (row_ids < self.num_rows)
      if picked.any():
        # Sorted reads are kinder to the page cache; the output keeps the batch order.
        ids = row_ids[picked] - self.starts[i]
        order = np.argsort(ids, kind="stable")
        rows = np.empty([len(ids), self.seq_len], np.int32)
        rows[order] = shard[ids[order]]
        out[picked] = rows
    return out


class _EpochPermutations:
  """permutation(seed, epoch) of the row ids, cached: a batch spans at most two epochs."""

  def __init__(self, seed: int, num_rows: int):
    self.seed, self.num_rows = seed, num_rows
    self.cache: dict[int, np.ndarray] = {}
    self.lock = threading.Lock()  # tf.data calls in from several threads.

  def __call__(self, epoch: int) -> np.ndarray:
    with self.lock:
      if epoch not in self.cache:
        rng = np.random.default_rng([self.seed, epoch])
        self.cache[epoch] = rng.permutation(self.num_rows)
        for old in [e for e in self.cache if e < epoch - 1]:
          del self.cache[old]
      return self.cache[epoch]


def _host_rows(global_batch_size: int, process_index: int, process_count: int) -> int:
  if global_batch_size % process_count:
    raise ValueError(f"Global batch size {global_batch_size} is not divisible by "
                     f"{process_count} processes.")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} outside [0, {process_count}).")
  return global_batch_size // process_count


def train_row_ids(step: int, *, num_rows: int, global_batch_size: int, seed: int,
                  permutations=None) -> np.ndarray:
  """Row ids of the whole global batch at `step` (the order's definition, see above)."""
  permutations = permutations or _EpochPermutations(seed, num_rows)
  j = step * global_batch_size + np.arange(global_batch_size, dtype=np.int64)
  epochs, positions = np.divmod(j, num_rows)
  row_ids = np.empty_like(j)
  for epoch in np.unique(epochs):
    picked = epochs == epoch
    row_ids[picked] = permutations(int(epoch))[positions[picked]]
  return row_ids


# Gathers in flight at once, with or without TF. tf.data's autotuning is off: destroying an
# iterator waits for its autotune thread, which at the end of a run sometimes took 40 s to
# stop (3 of 8 tiny runs, while training kept both cores busy; 0 of 8 without autotune), a
# hang after the last step. Gathering a batch is a memory copy: with 4 threads
# benchmarks/input_pipeline.py reads 46-53M tokens/s on the 2-core CPU under load (36.5M with
# autotune; 2026-12-04), over 200 times the fastest training measured (218,000 tokens/s, base
# on one H200).
_GATHER_THREADS = 4


def _dataset(first_step: int, num_steps: int | None, host_batch: Callable[[int], np.ndarray],
             batch_shape, prefetch_batches: int):
  """The tf.data pipeline behind _as_iterator."""
  tf_setup.hide_gpus_from_tf()
  steps = (tf.data.Dataset.counter(start=first_step) if num_steps is None
           else tf.data.Dataset.range(first_step, first_step + num_steps))
  batches = steps.map(
      lambda step: tf.ensure_shape(
          tf.numpy_function(host_batch, [step], tf.int32, stateful=False), batch_shape),
      num_parallel_calls=_GATHER_THREADS, deterministic=True)
  batches = batches.map(lambda ids: {"input_ids": ids}).prefetch(prefetch_batches)
  options = tf.data.Options()
  options.autotune.enabled = False
  return batches.with_options(options)


def _as_iterator(first_step: int, num_steps: int | None,
                 host_batch: Callable[[int], np.ndarray], batch_shape,
                 prefetch_batches: int) -> Iterator[dict[str, np.ndarray]]:
  """Runs `host_batch(step)` for `num_steps` steps (None: endless) from `first_step` on, in
  parallel, in order, prefetched, as numpy."""
  if tf is None:
    steps = (itertools.count(first_step) if num_steps is None
             else range(first_step, first_step + num_steps))
    return _threaded_iterator(steps, host_batch, prefetch_batches)
  return _dataset(first_step, num_steps, host_batch, batch_shape,
                  prefetch_batches).as_numpy_iterator()


def _threaded_iterator(steps, host_batch, prefetch_batches: int):
  """The same batches without TF: up to `prefetch_batches` + 1 gathers in flight, in order."""
  with concurrent.futures.ThreadPoolExecutor(max_workers=_GATHER_THREADS) as pool:
    in_flight = collections.deque()
    steps = iter(steps)
    for step in itertools.islice(steps, prefetch_batches + 1):
      in_flight.append(pool.submit(host_batch, step))
    while in_flight:
      batch = in_flight.popleft().result()
      for step in itertools.islice(steps, 1):
        in_flight.append(pool.submit(host_batch, step))
      yield {"input_ids": batch}


def train_iterator(prepared: PreparedData, *, global_batch_size: int, seed: int,
                   process_index: int = 0, process_count: int = 1, start_step: int = 0,
                   num_steps: int | None = None,
                   prefetch_batches: int = 4) -> Iterator[dict[str, np.ndarray]]:
  """{"input_ids": int32 [global_batch_size // process_count, seq_len]} for `num_steps` steps
  (None: endless) from step `start_step` on: this host's contiguous slice of each global
  training batch. The loop passes its step count, so nothing is gathered past its last step.
  """
  rows = _Rows(prepared, "train")
  b = _host_rows(global_batch_size, process_index, process_count)
  if rows.num_rows < global_batch_size:
    raise errors.InputError(
        f"The training split has {rows.num_rows} sequences of {rows.seq_len} tokens, fewer "
        f"than one global batch of {global_batch_size}: use more text, a smaller "
        "batch_size or a smaller seq_len.")
  permutations = _EpochPermutations(seed, rows.num_rows)

  def host_batch(step):
    row_ids = train_row_ids(int(step), num_rows=rows.num_rows,
                            global_batch_size=global_batch_size, seed=seed,
                            permutations=permutations)
    return rows.gather(row_ids[process_index * b:(process_index + 1) * b])

  return _as_iterator(start_step, num_steps, host_batch, [b, rows.seq_len], prefetch_batches)


def num_eval_steps(prepared: PreparedData, global_batch_size: int) -> int:
  """Batches in one pass over the eval split (the last one padded with [PAD] rows)."""
  return -(-prepared.num_rows("eval") // global_batch_size)


def eval_iterator(prepared: PreparedData, *, global_batch_size: int, process_index: int = 0,
                  process_count: int = 1,
                  prefetch_batches: int = 4) -> Iterator[dict[str, np.ndarray]]:
  """One pass over the eval split in stored order, sliced per host like train_iterator.

  The last global batch is filled up with all-[PAD] rows; they hold no maskable token, so
  losses that count only masked positions ignore them.
  """
  rows = _Rows(prepared, "eval")
  b = _host_rows(global_batch_size, process_index, process_count)
  if rows.num_rows == 0:
    raise errors.InputError(
        f"The eval split of {prepared.directory} is empty: no document was held out. Raise "
        "data.eval_fraction or use more documents.")

  def host_batch(step):
    first = int(step) * global_batch_size + process_index * b
    return rows.gather(np.arange(first, first + b, dtype=np.int64))

  return _as_iterator(0, num_eval_steps(prepared, global_batch_size), host_batch,
                      [b, rows.seq_len], prefetch_batches)
