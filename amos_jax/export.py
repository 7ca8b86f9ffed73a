"""The export command: any checkpoint amos_jax reads, written as an export.

  python -m amos_jax.export --from=/tmp/amos_tiny --out=/tmp/amos_tiny_export [--format=hf]

`--from` is any layout amos_jax.formats reads (a pretraining workdir, an amos_jax or Hugging
Face export); the formats themselves live in amos_jax/formats/.
"""

import os

from amos_jax import errors
from amos_jax.formats import pretraining_workdir
from amos_jax.formats import registry


def export_checkpoint(source: str, out_dir: str, *, dtype: str | None = None,
                      overwrite: bool = False, step: int | None = None,
                      export_format: str = "flax") -> str:
  """Exports the encoder of `source` (a pretraining workdir's newest or `step` checkpoint, or
  any other checkpoint layout, e.g. a GLUE run's seed_0/best) in `export_format`."""
  checkpoint = registry.load(source, step=step)
  card = None
  if export_format == "hf":
    from amos_jax.formats.hf import model_card
    if checkpoint.kind == pretraining_workdir.KIND:
      card = model_card.facts_from_workdir(source, checkpoint.step)
    elif checkpoint.task is not None:
      card = model_card.facts_from_finetuned(source)
  return registry.write_export(checkpoint.params, checkpoint.model_config,
                               checkpoint.tokenizer, out_dir, task=checkpoint.task,
                               dtype=dtype, overwrite=overwrite, export_format=export_format,
                               card=card)


def cli():
  """The command line (also the `amos-jax-export` console script)."""
  from absl import app, flags
  from amos_jax import cli_errors
  from amos_jax import summaries
  flags.DEFINE_string("from", None,
                      "Checkpoint to export: a pretraining workdir or any export amos_jax reads.")
  flags.DEFINE_string("workdir", None, "The same as --from (its older name).")
  flags.DEFINE_string("out", None, "Export directory to write.")
  flags.DEFINE_enum("format", "flax", list(registry.WRITERS),
                    "flax: amos_jax's export; hf: a Hugging Face transformers model.")
  flags.DEFINE_string("dtype", None, "Cast the parameters, e.g. bfloat16.")
  flags.DEFINE_integer("step", None, "Checkpoint step of a pretraining workdir; default newest.")
  flags.DEFINE_bool("overwrite", False, "Replace an existing export.")
  flags.mark_flags_as_required(["out"])

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    source = flags.FLAGS["from"].value
    if (source is None) == (flags.FLAGS.workdir is None):
      raise errors.InputError("Give the checkpoint to export as --from=DIR (or --workdir=DIR), "
                              "once.")
    source = source or flags.FLAGS.workdir
    path = export_checkpoint(source, flags.FLAGS.out, dtype=flags.FLAGS.dtype,
                             overwrite=flags.FLAGS.overwrite, step=flags.FLAGS.step,
                             export_format=flags.FLAGS.format)
    print(summaries.export(path, source=source,
                           files=sorted(name for name in os.listdir(path)
                                        if os.path.isfile(os.path.join(path, name)))))

  cli_errors.run(main)


if __name__ == "__main__":
  cli()
