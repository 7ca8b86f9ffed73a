"""Text files and output paths on every filesystem Apache Beam reaches (local, gs://, s3://,
hdfs://), for the Beam driver (beam_prepare.py).

Finding and dating local files goes through files.LocalFiles as in the local driver, so
that both record the same paths and mtimes in metadata.json; reading and writing go through
Beam's FileSystems, whatever the path.
"""

from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from amos_jax.data import files as files_lib


class BeamFiles(files_lib.LocalFiles):
  """Text files on any of Beam's filesystems."""

  def match(self, pattern: str) -> list[str]:
    if not files_lib.is_remote(pattern):
      return super().match(pattern)
    (result,) = FileSystems.match([pattern])
    return sorted(m.path for m in result.metadata_list if not m.path.endswith("/"))

  def stat(self, path: str) -> tuple[int, int]:
    if not files_lib.is_remote(path):
      return super().stat(path)
    (result,) = FileSystems.match([path])
    (metadata,) = result.metadata_list
    return metadata.size_in_bytes, round(metadata.last_updated_in_seconds * 1e9)

  def open(self, path: str) -> BinaryIO:
    # Uncompressed: sources.open_text decodes .gz itself, as for local files.
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def join(directory: str, *names: str) -> str:
  """`directory`/`names` in the path syntax of its filesystem."""
  return FileSystems.join(directory, *names)


def create(path: str) -> BinaryIO:
  """A new file at `path` (parent directories made as needed), open for binary writing."""
  return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)


def exists(path: str) -> bool:
  return FileSystems.exists(path)


def read_bytes(path: str) -> bytes:
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return f.read()


def write_whole(path: str, data: bytes):
  """Writes `path` so that it never exists half-written: a temporary file renamed into place
  (on object stores, where the rename is a copy, each object appears whole anyway)."""
  temporary = path + ".tmp"
  with create(temporary) as f:
    f.write(data)
  if exists(path):
    FileSystems.delete([path])
  FileSystems.rename([temporary], [path])


def listing(directory: str) -> list[str]:
  """The paths of the files in `directory` and below; [] if there is none."""
  (result,) = FileSystems.match([join(directory, "**")])
  return sorted(m.path for m in result.metadata_list)


def delete(path: str):
  """Deletes the file or directory tree at `path`, if there is one."""
  if exists(path):
    FileSystems.delete([path])
