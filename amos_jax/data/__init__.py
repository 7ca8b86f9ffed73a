"""Pretraining data: raw text -> SentencePiece ids -> packed rows -> per-host batches.

  tokenizer.py  train_tokenizer, load_tokenizer(path, vocab_size) -> Tokenizer
  sources.py    documents from text files/globs (.gz too) or a prepared TFDS dataset
  prepare.py    prepare(data_config, seq_len=, vocab_size=, workdir=, batch_size=)
                -> PreparedData; CLI: python -m amos_jax.data.prepare; the local driver
    beam_prepare.py    the same preparation as an Apache Beam pipeline (data.runner="beam")
    work_units.py      the corpus in fixed units, each tokenized, split and packed alone
    files.py           where text files are found (beam_files.py: Beam's filesystems too)
    input_identity.py  what makes two preparations' inputs the same (content hashes)
    packing.py         a unit's documents -> [CLS] ... [SEP] rows without padding -> .npy
    atomic_dir.py      one writer at a time; a directory appears whole or not at all
  prepared.py   PreparedData, load_prepared(dir): the prepared directory's reader side
  pipeline.py   train_iterator / eval_iterator -> {"input_ids": int32 [B // hosts, seq_len]}
  sample/       the bundled public-domain text (README gives origin and license)
"""
