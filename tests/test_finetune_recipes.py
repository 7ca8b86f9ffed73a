"""Recipes per encoder size: which one a width gets, config overrides, the record kept."""

import pytest

from amos_jax.finetune import recipes
from amos_jax.glue import tasks
from configs import glue as glue_configs

SST2 = tasks.get_task("sst2").recipe


@pytest.mark.parametrize("hidden_size, name, learning_rate", [
    (64, "tiny_encoder", 3e-3), (65, "mini_encoder", 1e-3), (128, "mini_encoder", 1e-3), (256, "small_encoder", 3e-4),
    (767, "small_encoder", 3e-4), (768, "task", SST2.learning_rate),
    (1024, "task", SST2.learning_rate)])
def test_the_encoder_width_picks_the_recipe(hidden_size, name, learning_rate):
  resolved = recipes.resolve(glue_configs.get_config("sst2"), SST2, hidden_size)
  assert resolved.name == name and resolved.overridden == ()
  assert resolved.recipe.learning_rate == learning_rate
  if name != "task":  # ELECTRA-Small's GLUE recipe, whatever the task.
    assert (resolved.recipe.batch_size, resolved.recipe.num_epochs,
            resolved.recipe.warmup_fraction) == (32, 3, 0.1)
  else:
    assert resolved.recipe == SST2


def test_config_fields_override_the_size_recipe_and_are_recorded():
  config = glue_configs.get_config("sst2")
  config.learning_rate, config.num_epochs = 1e-4, 5
  resolved = recipes.resolve(config, SST2, 256)
  assert resolved.record() == {"name": "small_encoder",
                               "overridden": ["learning_rate", "num_epochs"],
                               "batch_size": 32, "learning_rate": 1e-4, "num_epochs": 5,
                               "warmup_fraction": 0.1}


def test_the_log_line_names_the_recipe_and_what_the_config_set():
  config = glue_configs.get_config("sst2")
  config.num_epochs = 2
  assert recipes.resolve(config, SST2, 256).describe() == (
      "small_encoder: batch 32, lr 3e-4, 2 epochs (set by you), warmup 10%")
  assert recipes.resolve(glue_configs.get_config("sst2"), SST2, 768).describe() == (
      "task: batch 32, lr 1e-5, 5 epochs, warmup 6.25%")
  assert [recipes.short_float(v) for v in (2e-5, 1.5e-4, 0.1, 3e-3)] == [
      "2e-5", "1.5e-4", "0.1", "3e-3"]
