"""Masking: static slots, the right count, never a special token, per-example randomness."""

import jax.numpy as jnp
import numpy as np

from amos_jax import objective, special_tokens
from tests import helpers


def mask(ids, seed=0, mask_prob=0.15):
  return objective.mask_tokens(jnp.asarray(ids), helpers.keys(seed, ids.shape[0]), mask_prob)


def test_masks_the_right_number_of_ordinary_tokens_only():
  ids = helpers.text_batch(6, 40, 128, padded_rows=3)["input_ids"]
  batch = mask(ids)
  slots = objective.max_predictions(40, 0.15)
  assert batch.positions.shape == (6, slots)
  maskable = ~np.isin(ids, special_tokens.NEVER_MASKED)
  for row in range(6):
    chosen = np.asarray(batch.positions[row])[np.asarray(batch.valid[row])]
    assert len(set(chosen)) == len(chosen)
    assert len(chosen) == max(1, round(0.15 * maskable[row].sum()))
    assert maskable[row, chosen].all()
    expected = ids[row].copy()
    expected[chosen] = special_tokens.MASK_ID
    np.testing.assert_array_equal(batch.masked_ids[row], expected)
    np.testing.assert_array_equal(batch.targets[row], ids[row, batch.positions[row]])
  np.testing.assert_array_equal(batch.padding_mask, ids != special_tokens.PAD_ID)


def test_a_sequence_without_ordinary_tokens_masks_nothing():
  ids = np.array([[special_tokens.CLS_ID, special_tokens.SEP_ID] + [special_tokens.PAD_ID] * 6],
                 np.int32)
  batch = mask(ids)
  assert not np.asarray(batch.valid).any()
  np.testing.assert_array_equal(batch.masked_ids, ids)


def test_each_row_depends_only_on_its_own_key():
  ids = helpers.text_batch(4, 32, 128)["input_ids"]
  keys = helpers.keys(0, 4)
  full = objective.mask_tokens(jnp.asarray(ids), keys, 0.15)
  half = objective.mask_tokens(jnp.asarray(ids[2:]), keys[2:], 0.15)
  np.testing.assert_array_equal(full.positions[2:], half.positions)
  other = mask(ids, seed=1)
  assert not np.array_equal(full.positions, other.positions)


def test_another_tokenizers_special_ids_are_never_masked_and_mask_with_its_own():
  """BERT's ids: [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103."""
  bert = special_tokens.SpecialTokens(pad=0, unk=100, cls=101, sep=102, mask=103,
                                      pair_separator=(102,))
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 100, (4, 30)).astype(np.int32)  # amos_jax's 1-4: words for BERT.
  ids[:, 0], ids[:, 15], ids[:, -6], ids[:, -5:] = 101, 102, 102, 0
  ids[:, 7] = 100
  batch = objective.mask_tokens(jnp.asarray(ids), helpers.keys(0, 4), 0.5, bert)
  for row in range(4):
    chosen = np.asarray(batch.positions[row])[np.asarray(batch.valid[row])]
    assert not np.isin(ids[row, chosen], (0, 100, 101, 102, 103)).any()
    assert len(chosen) == round(0.5 * (30 - 9))
    assert (np.asarray(batch.masked_ids[row])[chosen] == 103).all()
  np.testing.assert_array_equal(batch.padding_mask, ids != 0)
