"""What identifies a preparation's inputs: equal records mean equal prepared data.

Text files are identified by their SHA-256, so a copied or touched file is still the same
input. Hashing 300 MB on every start would be slow, so metadata.json keeps a cache
(`file_stats`: path, size, mtime, hash) and a file whose size and mtime are unchanged
keeps its recorded hash.
"""

import hashlib
import os

from amos_jax.data import prepared as prepared_lib
from amos_jax.data import sources


def sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _file_stats(paths: list[str], recorded: dict) -> list[list]:
  """[path, size, mtime_ns, sha256] per text file. `recorded` maps path -> (size, mtime_ns,
  sha256) from the last preparation, whose hash is reused while size and mtime are unchanged."""
  stats = []
  for path in map(os.path.abspath, paths):
    stat = os.stat(path)
    size, mtime, known_sha = recorded.get(path, (None, None, None))
    sha = known_sha if (size, mtime) == (stat.st_size, stat.st_mtime_ns) else sha256_file(path)
    stats.append([path, stat.st_size, stat.st_mtime_ns, sha])
  return stats


def recorded_file_stats(metadata: dict) -> dict:
  """The hash cache of an earlier preparation's metadata: path -> (size, mtime_ns, sha256)."""
  return {path: (size, mtime, sha) for path, size, mtime, sha in metadata.get("file_stats", [])}


def inputs_and_file_stats(data_config, seq_len: int, vocab_size: int,
                          recorded: dict) -> tuple[dict, list]:
  """Everything that determines the prepared content (the `inputs` of metadata.json), and
  the text files' stats, the new hash cache. `recorded`: recorded_file_stats of the last
  preparation, or {}."""
  inputs = dict(
      format_version=prepared_lib.FORMAT_VERSION, seq_len=seq_len, vocab_size=vocab_size,
      source=data_config.source, eval_fraction=data_config.eval_fraction,
      tokenizer_model_type=data_config.tokenizer_model_type,
      tokenizer_train_lines=data_config.tokenizer_train_lines,
      tokenizer_sha256=(sha256_file(data_config.tokenizer_path)
                        if data_config.tokenizer_path else None),
  )
  file_stats = []
  if data_config.source == "text":
    file_stats = _file_stats(sources.resolve_text_files(data_config.text_files), recorded)
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
