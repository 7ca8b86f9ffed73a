"""Fine-tuning recipes, and the one per encoder size that a run starts from.

The tasks' recipes (GLUE's per task, SQuAD's) are the AMOS/COCO-LM base-size ones. A
narrower encoder learns far too slowly with them (a tiny encoder stays near chance on
SST-2 at lr 1e-5), so encoders narrower than 768 take ELECTRA-Small's GLUE recipe instead,
and the narrowest a larger rate. Every field a config sets (not None) overrides the recipe.
"""

import dataclasses

import ml_collections

FIELDS = ("batch_size", "learning_rate", "num_epochs", "warmup_fraction")


@dataclasses.dataclass(frozen=True)
class Recipe:
  """Fine-tuning hyperparameters."""
  batch_size: int
  learning_rate: float
  num_epochs: int
  warmup_fraction: float  # Of all training steps; linear decay to 0 follows.


TASK = "task"  # The task's own (base-size) recipe.
SMALL_ENCODER = "small_encoder"
TINY_ENCODER = "tiny_encoder"
MINI_ENCODER = "mini_encoder"

# (name, widest hidden_size it applies to, recipe), narrowest first; wider encoders keep the
# task's recipe.
BY_ENCODER_WIDTH = (
    # 3e-3 measured best for the tiny preset (hidden 64) on SST-2 (benchmarks/quality.py).
    (TINY_ENCODER, 64, Recipe(32, 3e-3, 3, 0.1)),
    # The mini preset (4x128) on SST-2, 10k rows, one seed: lr 3e-3 leaves random init and
    # ELECTRA at the majority class (0.556); 1e-3 gives 0.834 / 0.823, 3e-4 0.810 / 0.780.
    (MINI_ENCODER, 128, Recipe(32, 1e-3, 3, 0.1)),
    # ELECTRA-Small's GLUE recipe (Clark et al. 2020, appendix).
    (SMALL_ENCODER, 767, Recipe(32, 3e-4, 3, 0.1)),
)


@dataclasses.dataclass(frozen=True)
class Resolved:
  """The recipe a run uses: which one it started from and the fields the config set."""
  name: str
  recipe: Recipe
  overridden: tuple[str, ...]

  def record(self) -> dict:
    """As results.json stores it."""
    return {"name": self.name, "overridden": list(self.overridden),
            **dataclasses.asdict(self.recipe)}

  def describe(self) -> str:
    """One line for the log: `small_encoder: batch 32, lr 3e-4, 2 epochs (set by you), ...`."""
    recipe = self.recipe
    parts = {"batch_size": f"batch {recipe.batch_size}",
             "learning_rate": f"lr {short_float(recipe.learning_rate)}",
             "num_epochs": f"{recipe.num_epochs} epoch{'s' if recipe.num_epochs != 1 else ''}",
             "warmup_fraction": f"warmup {recipe.warmup_fraction * 100:g}%"}
    # Marks what the config set, so a reader sees which values are not the size's recipe.
    return f"{self.name}: " + ", ".join(
        part + (" (set by you)" if key in self.overridden else "") for key, part in parts.items())


def short_float(value: float) -> str:
  """A learning rate as people write it: 3e-4, 1.5e-5, 0.1 stays 0.1."""
  if value == 0 or 1e-2 <= abs(value) < 1e3:
    return f"{value:g}"
  mantissa, exponent = f"{value:e}".split("e")
  return f"{float(mantissa):g}e{int(exponent)}"


def for_encoder(task_recipe: Recipe, hidden_size: int) -> tuple[str, Recipe]:
  """(name, recipe) for an encoder of `hidden_size`."""
  for name, widest, recipe in BY_ENCODER_WIDTH:
    if hidden_size <= widest:
      return name, recipe
  return TASK, task_recipe


def resolve(config: ml_collections.ConfigDict, task_recipe: Recipe,
            hidden_size: int) -> Resolved:
  """The encoder size's recipe with every field `config` sets (not None) overriding it."""
  name, recipe = for_encoder(task_recipe, hidden_size)
  overridden = tuple(key for key in FIELDS if config[key] is not None)
  values = {key: config[key] for key in overridden}
  for key in ("learning_rate", "warmup_fraction"):
    if key in values:
      values[key] = float(values[key])
  return Resolved(name, dataclasses.replace(recipe, **values), overridden)
