"""Which weights fine-tuning starts from: a pretraining workdir's newest or a chosen step."""

import numpy as np
import pytest

from amos_jax import errors
from amos_jax.formats import registry
from tests import export_helpers


@pytest.fixture(scope="module")
def two_step_workdir(tmp_path_factory, tokenizer_path):
  return export_helpers.make_pretraining_workdir(
      str(tmp_path_factory.mktemp("pre") / "run"), tokenizer_path, steps=(5, 9))


def _embedding(init):
  return np.asarray(init.encoder_params["token_embedding"])


def test_a_chosen_step_is_read_and_the_newest_by_default(two_step_workdir):
  newest = registry.load(two_step_workdir)
  first = registry.load(two_step_workdir, step=5)
  assert (newest.step, first.step) == (9, 5)
  # The helper's second checkpoint holds the first one's parameters plus 1.
  np.testing.assert_allclose(_embedding(newest) - _embedding(first), 1.0, rtol=0, atol=1e-6)


def test_a_missing_step_names_the_steps_there(two_step_workdir):
  with pytest.raises(FileNotFoundError, match=r"No checkpoint of step 7 .* holds steps \[5, 9\]"):
    registry.load(two_step_workdir, step=7)


def test_an_export_takes_no_step(tmp_path, tokenizer_path):
  export_dir = export_helpers.export_pretrained(str(tmp_path), tokenizer_path)
  assert registry.load(export_dir).step is None
  with pytest.raises(errors.InputError,
                     match=r"step \(3: init_checkpoint_step.* is an amos_jax export"):
    registry.load(export_dir, step=3)
