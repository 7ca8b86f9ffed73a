"""Support files of amos_jax's Hugging Face export (formats/hf_export.py reads and writes it).

  weights.py                  amos_jax parameter tree <-> safetensors tensors (numpy only)
  hf_config.py                amos_jax model config and task <-> config.json
  tokenizer_files.py          tokenizer.json and tokenizer_config.json from the SentencePiece model
                              (or the files of the authors' tokenizer)
  model_card.py               the generated README.md
  configuration_amos_jax.py   copied into every export: the transformers config class
  modeling_amos_jax.py        copied into every export: the PyTorch model
  tokenization_amos_jax.py    copied, with data/authors_pieces.py, into the export of a model
                              with the AMOS authors' tokenizer: its transformers tokenizer

Only tokenizer_files.py needs the `tokenizers` library (and transformers' copy of
SentencePiece's model proto), and only the copied files need torch and transformers; reading
an export back needs none of them.
"""
