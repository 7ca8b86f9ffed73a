"""Pretraining data: raw text -> SentencePiece ids -> packed rows -> per-host batches.

  tokenizer.py  train_tokenizer, load_tokenizer(path, vocab_size) -> Tokenizer
  sources.py    documents from text files/globs (.gz too) or a prepared TFDS dataset
  prepare.py    prepare(data_config, seq_len=, vocab_size=, workdir=, batch_size=)
                -> PreparedData; CLI: python -m amos_jax.data.prepare
    input_identity.py  what makes two preparations' inputs the same (content hashes)
    packing.py         documents -> [CLS] ... [SEP] rows without padding -> .npy shards
    atomic_dir.py      one writer at a time; a directory appears whole or not at all
  prepared.py   PreparedData, load_prepared(dir): the prepared directory's reader side
  pipeline.py   train_iterator / eval_iterator -> {"input_ids": int32 [B // hosts, seq_len]}
  sample/       the bundled public-domain text (README gives origin and license)
"""
