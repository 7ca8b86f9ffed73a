"""What identifies a preparation's inputs: equal records mean equal prepared data.

Text files are identified by their SHA-256, so a copied or touched file is still the same
input. Hashing 300 MB on every start would be slow, so metadata.json keeps a cache
(`file_stats`: path, size, mtime, hash) and a file whose size and mtime are unchanged
keeps its recorded hash.
"""

import hashlib

from amos_jax.data import files as files_lib
from amos_jax.data import prepared as prepared_lib
from amos_jax.data import sources


def sha256_file(path: str, files=None) -> str:
  """The SHA-256 of a file's bytes; `files` (default: files.LocalFiles) opens it."""
  digest = hashlib.sha256()
  with (files or files_lib.LocalFiles()).open(path) as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _file_stats(paths: list[str], recorded: dict, files) -> list[list]:
  """[path, size, mtime_ns, sha256] per text file. `recorded` maps path -> (size, mtime_ns,
  sha256) from the last preparation, whose hash is reused while size and mtime are unchanged."""
  stats = []
  for path in paths:
    size, mtime = files.stat(path)
    known = recorded.get(path, (None, None, None))
    sha = known[2] if known[:2] == (size, mtime) else sha256_file(path, files)
    stats.append([path, size, mtime, sha])
  return stats


def recorded_file_stats(metadata: dict) -> dict:
  """The hash cache of an earlier preparation's metadata: path -> (size, mtime_ns, sha256)."""
  return {path: (size, mtime, sha) for path, size, mtime, sha in metadata.get("file_stats", [])}


def inputs_and_file_stats(data_config, seq_len: int, vocab_size: int, recorded: dict,
                          files=None) -> tuple[dict, list]:
  """Everything that determines the prepared content (the `inputs` of metadata.json), and
  the text files' stats, the new hash cache. `recorded`: recorded_file_stats of the last
  preparation, or {}. `files` (default: files.LocalFiles) finds and reads the text files.
  Not an input: which driver prepares (data.runner), so both give the same directory."""
  files = files or files_lib.LocalFiles()
  inputs = dict(
      format_version=prepared_lib.FORMAT_VERSION, seq_len=seq_len, vocab_size=vocab_size,
      source=data_config.source, eval_fraction=data_config.eval_fraction,
      tokenizer_model_type=data_config.tokenizer_model_type,
      tokenizer_train_lines=data_config.tokenizer_train_lines,
      tokenizer_sha256=(sha256_file(data_config.tokenizer_path, files)
                        if data_config.tokenizer_path else None),
      # Rows are packed within work units, so their size shapes the rows.
      unit_mb=data_config.unit_mb,
  )
  file_stats = []
  if data_config.source == "text":
    file_stats = _file_stats(sources.resolve_text_files(data_config.text_files, files),
                             recorded, files)
    inputs.update(
        document_split=data_config.document_split,
        max_line_bytes=data_config.max_line_bytes,
        files=[[path, size, sha] for path, size, _, sha in file_stats])
  else:
    inputs.update(tfds_name=data_config.tfds_name, tfds_split=data_config.tfds_split,
                  tfds_data_dir=data_config.tfds_data_dir,
                  tfds_text_key=data_config.tfds_text_key)
  return inputs, file_stats


def changed_inputs(old: dict, new: dict) -> str:
  """'key: prepared X, now Y; ...' for every input that differs; empty if none does."""
  changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
  return "; ".join(f"{k}: prepared {old.get(k)!r}, now {new.get(k)!r}" for k in changed)
