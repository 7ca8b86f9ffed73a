"""Checkpoint formats: each file recognises, reads and (where it applies) writes one layout.

  registry.py             which layouts exist; load(path) finds and reads any of them, and
                          write_export writes an export whole or not at all
  loaded.py               Checkpoint: what reading any layout gives
  encoder_tree.py         the module a model config builds, and parameter-tree checks
  flax_export.py          amos_jax's export (config.json, params.msgpack, tokenizer.model)
  hf_export.py            amos_jax's Hugging Face export (support files in hf/)
  pretraining_workdir.py  a pretraining run's workdir (its orbax checkpoints' encoder)
  weight_files.py         safetensors (without torch) and PyTorch pickles to numpy

This layer sits below fine-tuning, inference and the export command: it imports nothing from
amos_jax.finetune, glue, squad, inference or export (tests/test_formats.py checks).
"""
