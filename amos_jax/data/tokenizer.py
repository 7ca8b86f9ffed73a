"""SentencePiece tokenizer with the special tokens of amos_jax.special_tokens at fixed ids."""

import dataclasses
import hashlib
import io
import os
import shutil
from typing import Iterable, Sequence

import sentencepiece as spm

from amos_jax import atomic_file
from amos_jax import errors
from amos_jax import special_tokens

# The model's name in workdirs, exports and prepared data.
MODEL_FILE = "tokenizer.model"

# The trainer's threads, fixed rather than the machine's cores: the learned pieces (and the
# file, which records the setting) change with the thread count, and the prepared data must
# not depend on which machine launched the preparation. 16 is SentencePiece's own default.
_TRAINER_THREADS = 16

# Longest line fed to the trainer; longer ones are cut (SentencePiece would drop them).
_MAX_TRAIN_LINE_CHARS = 4096


class EmptyCorpusError(errors.InputError):
  """The tokenizer was given no text; callers that know the files say which ones."""


def char_index_of_bytes(text: str) -> list[int]:
  """For each UTF-8 byte offset of `text` (its end included), the index of the character
  holding that byte: SentencePiece reports pieces' spans in bytes."""
  char_at_byte = [0] * (len(text.encode("utf-8")) + 1)
  byte = 0
  for index, char in enumerate(text):
    width = len(char.encode("utf-8"))
    char_at_byte[byte:byte + width] = [index] * width
    byte += width
  char_at_byte[byte] = len(text)
  return char_at_byte


@dataclasses.dataclass(frozen=True)
class Tokenizer:
  """A loaded SentencePiece model; `model_path` is the file checkpoints and exports copy."""
  model_path: str
  processor: spm.SentencePieceProcessor
  # amos_jax trains its specials into fixed ids; load_tokenizer checks them.
  special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX
  kind: str = "sentencepiece"

  def save(self, directory: str) -> list[str]:
    """Copies the model into `directory` as tokenizer.model; returns the file names."""
    shutil.copyfile(self.model_path, os.path.join(directory, MODEL_FILE))
    return [MODEL_FILE]

  @property
  def vocab_size(self) -> int:
    """Number of pieces, special tokens included."""
    return self.processor.vocab_size()

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`, without [CLS]/[SEP]; "[MASK]" in text is plain characters."""
    return self.processor.encode(text)

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` and each token's (start, end) character span in `text`.

    Spans exclude the whitespace a piece's leading "▁" stands for, so `text[start:end]`
    is the token's visible text; a piece of whitespace alone has an empty span at its end.
    """
    pieces = self.processor.encode(text, out_type="proto").pieces
    char_at_byte = char_index_of_bytes(text)
    ids, spans = [], []
    for piece in pieces:
      start, end = char_at_byte[piece.begin], char_at_byte[piece.end]
      while start < end and text[start].isspace():
        start += 1
      ids.append(piece.id)
      spans.append((start, end))
    return ids, spans

  def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
    """Encodes many texts on `num_threads` C++ threads (0: all cores)."""
    return self.processor.encode(list(texts), num_threads=num_threads or os.cpu_count())

  def decode(self, ids: Iterable[int]) -> str:
    """Text of `ids`; special tokens ([PAD], [CLS], [SEP], [MASK]) decode to nothing."""
    return self.processor.decode([int(i) for i in ids])

  def vocab_sha256(self) -> str:
    """Hash of the pieces and their scores: equal for equal vocabularies, unlike the file's
    hash (the file also records training options)."""
    digest = hashlib.sha256()
    for i in range(self.vocab_size):
      digest.update(f"{self.processor.id_to_piece(i)}\t{self.processor.get_score(i)}\n"
                    .encode("utf-8"))
    return digest.hexdigest()


def train_tokenizer(lines: Iterable[str], model_path: str, *, vocab_size: int,
                    model_type: str = "unigram", max_lines: int = 1_000_000) -> Tokenizer:
  """Trains a cased SentencePiece model on `lines` and writes it to `model_path`.

  The model file is written under a temporary name and renamed last, so a crash never
  leaves a truncated model at `model_path`. Its bytes depend only on `lines` and the
  settings: not on the machine's cores (see _TRAINER_THREADS) nor on the path.
  """
  if model_type not in ("unigram", "bpe"):
    raise errors.InputError(f"tokenizer_model_type must be 'unigram' or 'bpe', got {model_type!r}.")
  fed = [0]  # Lines handed to the trainer: with none, its error would only say INTERNAL.

  def sentences():
    for line in lines:
      if line.strip():
        fed[0] += 1
        yield line[:_MAX_TRAIN_LINE_CHARS]

  model = io.BytesIO()
  spm.set_random_generator_seed(0)  # Sampling when lines exceed max_lines: fixed, too.
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(),
        # In memory: with a model_prefix, the file would record that (temporary) path.
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        # nmt_nfkc normalizes Unicode but keeps case: the model is cased.
        normalization_rule_name="nmt_nfkc",
        character_coverage=0.9995,
        # [PAD] [UNK] [CLS] [SEP] are SentencePiece's own pad/unk/bos/eos slots; [MASK] is a
        # control symbol, so encoding text never yields it and decoding drops it.
        pad_id=special_tokens.PAD_ID, pad_piece=special_tokens.PAD,
        unk_id=special_tokens.UNK_ID, unk_piece=special_tokens.UNK,
        bos_id=special_tokens.CLS_ID, bos_piece=special_tokens.CLS,
        eos_id=special_tokens.SEP_ID, eos_piece=special_tokens.SEP,
        control_symbols=[special_tokens.MASK],
        input_sentence_size=max_lines,
        shuffle_input_sentence=True,
        max_sentence_length=4 * _MAX_TRAIN_LINE_CHARS,
        num_threads=_TRAINER_THREADS,
        minloglevel=2,
    )
  except RuntimeError as e:
    if not fed[0]:
      raise EmptyCorpusError("No text to train the tokenizer on: every line is blank.") from e
    if "Vocabulary size" in str(e) or "vocab_size" in str(e):
      raise errors.InputError(
          f"Cannot train a SentencePiece vocabulary of {vocab_size} pieces from this corpus: "
          f"it is too small or too uniform ({e}). Use more text or a smaller "
          "config.model.vocab_size.") from e
    raise
  with atomic_file.replacing(model_path, "wb") as f:
    f.write(model.getvalue())
  return load_tokenizer(model_path, vocab_size=vocab_size)


def load_tokenizer(path: str, vocab_size: int | None = None) -> Tokenizer:
  """Loads a SentencePiece model and checks its vocab size and special-token ids."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No SentencePiece model at {path!r}.")
  try:
    processor = spm.SentencePieceProcessor(model_file=path)
  except (RuntimeError, OSError) as e:
    raise errors.InputError(f"{path!r} is not a SentencePiece model ({e}).") from e
  if vocab_size is not None and processor.vocab_size() != vocab_size:
    raise errors.InputError(
        f"Tokenizer {path!r} has {processor.vocab_size()} pieces but config.model.vocab_size "
        f"is {vocab_size}: they must match.")
  for token_id, piece in ((special_tokens.PAD_ID, special_tokens.PAD),
                          (special_tokens.UNK_ID, special_tokens.UNK),
                          (special_tokens.CLS_ID, special_tokens.CLS),
                          (special_tokens.SEP_ID, special_tokens.SEP),
                          (special_tokens.MASK_ID, special_tokens.MASK)):
    if processor.id_to_piece(token_id) != piece:
      raise errors.InputError(
          f"Tokenizer {path!r} has {processor.id_to_piece(token_id)!r} at id {token_id}, "
          f"expected {piece!r} (amos_jax.special_tokens).")
  return Tokenizer(model_path=os.path.abspath(path), processor=processor)
