"""Support files of amos_jax's Hugging Face export (formats/hf_export.py reads and writes it).

  weights.py                  amos_jax parameter tree <-> safetensors tensors (numpy only)
  hf_config.py                amos_jax model config and task <-> config.json
  tokenizer_files.py          tokenizer.json and tokenizer_config.json from the SentencePiece model
  model_card.py               the generated README.md
  configuration_amos_jax.py   copied into every export: the transformers config class
  modeling_amos_jax.py        copied into every export: the PyTorch model

Only tokenizer_files.py needs the `tokenizers` library (and transformers' copy of
SentencePiece's model proto), and only the two copied files need torch; reading an export
back needs none of them.
"""
