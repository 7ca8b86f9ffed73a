"""Iterators: determinism, resume equality, topology independence, epochs, eval, errors."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from amos_jax import special_tokens
from amos_jax.data import pipeline
from amos_jax.data import prepare as prepare_lib
from configs import default

BATCH = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  """The bundled sample, small vocab and short rows, in several shards."""
  config = default.data_config()
  config.shard_mb = 0.5
  config.eval_fraction = 0.02
  return prepare_lib.prepare(config, seq_len=32, vocab_size=512,
                             workdir=str(tmp_path_factory.mktemp("work")))


def _batches(data, num_steps, **kwargs):
  kwargs = dict(global_batch_size=BATCH, seed=0) | kwargs
  iterator = pipeline.train_iterator(data, **kwargs)
  return [next(iterator)["input_ids"] for _ in range(num_steps)]


def test_batch_is_int32_rows_of_the_data(data):
  assert len(data.metadata["splits"]["train"]["shards"]) > 1
  batch = next(pipeline.train_iterator(data, global_batch_size=BATCH, seed=0))
  assert set(batch) == {"input_ids"}
  ids = batch["input_ids"]
  assert ids.shape == (BATCH, 32) and ids.dtype == np.int32
  stored = {tuple(r) for r in np.concatenate(data.shards("train"))}
  assert all(tuple(r) in stored for r in ids)


def test_deterministic_and_seeded(data):
  first, again = _batches(data, 3), _batches(data, 3)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, _batches(data, 3, seed=1))


def test_resume_sees_the_uninterrupted_batches(data):
  num_rows = data.num_rows("train")
  # Resume just before the first epoch boundary so the compared batches cross it.
  start = num_rows // BATCH - 1
  uninterrupted = _batches(data, start + 3)
  resumed = _batches(data, 3, start_step=start)
  np.testing.assert_array_equal(uninterrupted[start:], resumed)


@pytest.mark.parametrize("process_count", [2, 4])
def test_hosts_slice_the_same_global_batch(data, process_count):
  # Also a resume on another topology: hosts resuming at step 5 vs one uninterrupted host.
  single = _batches(data, 7)[5:]
  slices = [_batches(data, 2, start_step=5, process_index=i, process_count=process_count)
            for i in range(process_count)]
  for step in range(2):
    np.testing.assert_array_equal(np.concatenate([s[step] for s in slices]), single[step])


def test_each_epoch_is_a_permutation(data):
  num_rows = data.num_rows("train")
  steps = 2 * num_rows // BATCH + 1
  ids = np.concatenate([pipeline.train_row_ids(s, num_rows=num_rows, global_batch_size=BATCH,
                                               seed=0) for s in range(steps)])
  for epoch in range(2):
    epoch_ids = ids[epoch * num_rows:(epoch + 1) * num_rows]
    np.testing.assert_array_equal(np.sort(epoch_ids), np.arange(num_rows))
  assert not np.array_equal(ids[:num_rows], ids[num_rows:2 * num_rows])


def test_bad_batch_settings(data):
  too_big = data.num_rows("train") + 1
  with pytest.raises(ValueError, match=f"{too_big - 1} sequences of 32 tokens.*{too_big}"):
    pipeline.train_iterator(data, global_batch_size=too_big, seed=0)
  with pytest.raises(ValueError, match="not divisible by 3"):
    pipeline.train_iterator(data, global_batch_size=BATCH, seed=0, process_count=3)


def test_eval_is_one_padded_pass(data):
  num_rows = data.num_rows("eval")
  assert num_rows % BATCH  # The last batch needs padding, so padding is tested.
  stored = np.concatenate(data.shards("eval"))
  batches = [b["input_ids"] for b in pipeline.eval_iterator(data, global_batch_size=BATCH)]
  assert len(batches) == pipeline.num_eval_steps(data, BATCH) == -(-num_rows // BATCH)
  everything = np.concatenate(batches)
  np.testing.assert_array_equal(everything[:num_rows], stored)
  assert (everything[num_rows:] == special_tokens.PAD_ID).all()
  halves = [np.concatenate([b["input_ids"] for b in pipeline.eval_iterator(
      data, global_batch_size=BATCH, process_index=i, process_count=2)]) for i in range(2)]
  per_step = [np.concatenate([halves[0][s * 8:(s + 1) * 8], halves[1][s * 8:(s + 1) * 8]])
              for s in range(len(batches))]
  np.testing.assert_array_equal(np.concatenate(per_step), everything)


def test_without_tensorflow_the_thread_pool_gives_the_same_batches(data, monkeypatch):
  start = data.num_rows("train") // BATCH - 2  # Across the first epoch boundary.
  with_tf = _batches(data, 4, start_step=start, process_index=1, process_count=2)
  eval_with_tf = [b["input_ids"] for b in pipeline.eval_iterator(data, global_batch_size=BATCH)]
  monkeypatch.setattr(pipeline, "tf", None)
  without_tf = pipeline.train_iterator(data, global_batch_size=BATCH, seed=0, start_step=start,
                                       process_index=1, process_count=2, prefetch_batches=2)
  np.testing.assert_array_equal([next(without_tf)["input_ids"] for _ in range(4)], with_tf)
  eval_without_tf = [b["input_ids"] for b in pipeline.eval_iterator(data, global_batch_size=BATCH)]
  assert len(eval_without_tf) == len(eval_with_tf)  # One pass, then the iterator ends.
  np.testing.assert_array_equal(np.concatenate(eval_without_tf), np.concatenate(eval_with_tf))


def test_tf_sees_no_gpu(data):
  next(pipeline.train_iterator(data, global_batch_size=BATCH, seed=0))
  assert tf.config.get_visible_devices("GPU") == []


def test_empty_eval_split_is_an_error(tmp_path):
  config = default.data_config()
  config.eval_fraction = 0.0
  data = prepare_lib.prepare(config, seq_len=128, vocab_size=512, workdir=str(tmp_path))
  assert data.num_rows("eval") == 0
  with pytest.raises(ValueError, match="eval split .* is empty"):
    pipeline.eval_iterator(data, global_batch_size=BATCH)


def test_a_run_s_iterator_ends_after_its_steps(data):
  # The loop passes its step count, so no batch is left in flight when the run ends.
  start = data.num_rows("train") // BATCH - 1  # Across the first epoch boundary.
  endless = _batches(data, 3, start_step=start)
  bounded = pipeline.train_iterator(data, global_batch_size=BATCH, seed=0, start_step=start,
                                    num_steps=3)
  taken = [b["input_ids"] for b in itertools.islice(bounded, 4)]  # Endless would give 4.
  assert len(taken) == 3
  np.testing.assert_array_equal(taken, endless)


def test_tf_data_autotuning_is_off():
  # Destroying an autotuned iterator waits for its autotune thread, which sometimes hung a
  # run's exit for 40 s after its last step.
  dataset = pipeline._dataset(0, 2, lambda step: np.zeros((2, 4), np.int32), [2, 4], 1)
  assert dataset.options().autotune.enabled is False
  assert [b["input_ids"].shape for b in dataset.as_numpy_iterator()] == [(2, 4), (2, 4)]
