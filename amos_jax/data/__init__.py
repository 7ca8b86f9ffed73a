"""Pretraining data: raw text -> SentencePiece ids -> packed rows -> per-host batches.

  tokenizer.py  train_tokenizer, load_tokenizer(path, vocab_size) -> Tokenizer
  sources.py    documents from text files/globs (.gz too) or a prepared TFDS dataset
  prepare.py    prepare(data_config, seq_len=, vocab_size=, workdir=, batch_size=)
                -> PreparedData; load_prepared(dir); CLI: python -m amos_jax.data.prepare
  pipeline.py   train_iterator / eval_iterator -> {"input_ids": int32 [B // hosts, seq_len]}
  sample/       the bundled public-domain text (README gives origin and license)
"""
