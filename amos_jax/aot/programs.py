"""The jitted steps amos_jax runs, lowered for a mesh of devices with nothing materialised.

Each `lower_*` function builds the same jit(shard_map(step)) that training runs (for
pretraining, train/build.py's, with the config's gradient accumulation) and lowers it
against `jax.ShapeDtypeStruct` state and batch placed on the mesh: replicated state, batch
rows sharded over the `data` axis. The mesh may hold compile-only devices of accelerators
this host does not have (aot/targets.py); `.compile()` on the result then runs their
compiler.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from amos_jax import config_validation
from amos_jax.finetune import recipes
from amos_jax.finetune import step as finetune_step
from amos_jax.glue import finetune as glue_finetune
from amos_jax.glue import tasks as glue_tasks
from amos_jax.models import classifier
from amos_jax.models import span
from amos_jax.squad import finetune as squad_finetune
from amos_jax.train import build as build_lib
from amos_jax.train import flops as flops_lib
from amos_jax.train import step as step_lib
from amos_jax.train.state import create_train_state
from configs import finetuning

# The fine-tuning shapes the compile check uses: GLUE's sequence length and MNLI's recipe
# (the largest task), SQuAD's (configs/glue.py, configs/squad.py).
GLUE_SEQ_LEN, SQUAD_SEQ_LEN = 128, 384
GLUE_TASK = "mnli"


@dataclasses.dataclass(frozen=True)
class Program:
  """A lowered step and what the report needs to read its compiled form."""
  lowered: jax.stages.Lowered
  global_batch: int
  seq_len: int
  micro_batches: int  # Gradient accumulation steps per update.
  model_flops_per_token: float  # train/flops.py's count, for the whole step.
  compute_dtype: str
  # Per token, FLOPs that XLA's cost analysis cannot see: cuDNN's fused attention, counted
  # by train/flops.py (the roofline adds them to the compiled FLOPs).
  fused_attention_flops_per_token: float = 0.0


def _if_fused(model_config: ml_collections.ConfigDict, attention_flops: float) -> float:
  """Attention's FLOPs where cuDNN's fused kernel computes them, out of the cost analysis'
  sight (Program.fused_attention_flops_per_token); 0 with XLA's attention, which it counts."""
  return attention_flops if model_config.attention_implementation == "cudnn" else 0.0


def _replicated(mesh):
  return NamedSharding(mesh, P())


def _abstract(tree, sharding):
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), tree)


def _batch(mesh, global_batch: int, seq_len: int, **label_columns):
  """{"input_ids": [B, L] int32, label columns [B] of the given dtypes}, rows over `data`."""
  rows = NamedSharding(mesh, P(step_lib.DATA_AXIS))
  batch = {"input_ids": jax.ShapeDtypeStruct((global_batch, seq_len), jnp.int32,
                                             sharding=rows)}
  for name, dtype in label_columns.items():
    batch[name] = jax.ShapeDtypeStruct((global_batch,), dtype, sharding=rows)
  return batch


def _key(mesh):
  return jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=_replicated(mesh))


def lower_pretraining(config: ml_collections.ConfigDict, mesh) -> Program:
  """The pretraining step of `config` (its batch_size is global) on `mesh`."""
  config_validation.validate(config, mesh.size)
  pretraining = build_lib.build(config, mesh)
  state = build_lib.abstract_state(pretraining, config)
  lowered = pretraining.train_step.lower(state, _batch(mesh, config.batch_size, config.seq_len),
                                         _key(mesh))
  local_rows = config.batch_size // mesh.size
  micro_batches = step_lib.accumulation_steps(config, local_rows, mesh.devices.flat[0].platform)
  return Program(lowered, config.batch_size, config.seq_len, micro_batches,
                 sum(flops_lib.flops_per_token(config).values()), config.model.dtype,
                 _if_fused(config.model, flops_lib.attention_flops_per_token(config)))


def finetuning_batch_size(task: str, model_config: ml_collections.ConfigDict) -> int:
  """The global batch of the task's recipe for an encoder of this width."""
  task_recipe = (glue_tasks.get_task(GLUE_TASK).recipe if task == "glue"
                 else squad_finetune.RECIPE)
  return recipes.for_encoder(task_recipe, model_config.hidden_size)[1].batch_size


def lower_finetuning(task: str, model_config: ml_collections.ConfigDict, global_batch: int,
                     mesh) -> Program:
  """GLUE's (MNLI, 3 labels, 128 tokens) or SQuAD's (384 tokens) step for this encoder."""
  if global_batch % mesh.size:
    raise config_validation.ConfigError(
        f"--finetune_batch_size={global_batch}: expected a multiple of the {mesh.size} "
        "devices.")
  seq_len = GLUE_SEQ_LEN if task == "glue" else SQUAD_SEQ_LEN
  if seq_len > model_config.max_position_embeddings:
    raise config_validation.ConfigError(
        f"--task={task} compiles {seq_len}-token rows: expected "
        f"config.model.max_position_embeddings >= {seq_len}, not "
        f"{model_config.max_position_embeddings}.")
  if task == "glue":
    num_labels = len(glue_tasks.get_task(GLUE_TASK).label_names)
    model = classifier.SequenceClassifier(model_config, num_labels)
    example_losses = lambda logits, batch: glue_finetune.example_losses(  # noqa: E731
        logits, batch["labels"], is_regression=False)
    batch = _batch(mesh, global_batch, seq_len, labels=jnp.int32)
    head_flops = 0.0  # One [CLS] row per example: nothing per token.
  else:
    model = span.SpanExtractor(model_config)
    example_losses = lambda outputs, batch: squad_finetune.span_losses(  # noqa: E731
        *outputs, batch)  # The model's (start logits, end logits).
    batch = _batch(mesh, global_batch, seq_len, start_positions=jnp.int32,
                   end_positions=jnp.int32)
    head_flops = 6 * model_config.hidden_size * 2  # Start and end logits on every token.
  # The authors' AdamW, as every fine-tuning config sets it; the schedule's values do not
  # change the program.
  optimizer, learning_rate_fn = finetune_step.make_optimizer(
      finetuning.add_training_fields(ml_collections.ConfigDict()).optimizer,
      learning_rate=1e-5, num_train_steps=1000, warmup_steps=100)
  train_step = finetune_step.make_train_step(model, optimizer, learning_rate_fn, mesh,
                                             global_batch, example_losses)
  token_ids = np.zeros((1, seq_len), np.int32)
  state_shapes = jax.eval_shape(
      lambda key: create_train_state(model.init(key, token_ids, token_ids)["params"],
                                     optimizer), jax.random.key(0))
  lowered = train_step.lower(_abstract(state_shapes, _replicated(mesh)), batch, _key(mesh))
  per_token = flops_lib.encoder_flops_per_token(model_config, seq_len,
                                                model_config.num_layers) + head_flops
  return Program(lowered, global_batch, seq_len, 1, per_token, model_config.dtype,
                 _if_fused(model_config, model_config.num_layers
                           * flops_lib.attention_flops_per_layer(seq_len,
                                                                 model_config.hidden_size)))
