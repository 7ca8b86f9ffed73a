"""The AMOS/COCO-LM authors' rules from text to ids (steps 1-5 of data/authors_tokenizer.py's
docstring): their pre-tokenisation, which SentencePiece pieces they keep, and their fairseq
dictionary.

One copy for two users: amos_jax's tokenizer (data/authors_tokenizer.py) imports it, and the
Hugging Face export of a model with this tokenizer ships this file as it is beside
tokenization_amos_jax.py, whose transformers tokenizer imports it (formats/hf/). So it imports
the standard library only (whoever loads the export has no amos_jax), and a change here changes
both tokenizers at once.
"""

import re
import unicodedata
from typing import Sequence

# The release's file names, which amos_jax's checkpoints and exports keep.
SENTENCEPIECE_FILE = "sp.model"
DICTIONARY_FILE = "dict.txt"
# fairseq's four specials first; dict.txt may name them with either spelling.
FIXED = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
MASK = "<mask>"
ALIASES = {"[CLS]": "<s>", "[PAD]": "<pad>", "[SEP]": "</s>", "[UNK]": "<unk>",
           "[MASK]": MASK}
_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u00b4": "'", "\u201c": '"',
                             "\u201d": '"', "\u2014": "-", "\u2013": "-"})
_CONTRACTIONS = ((re.compile(r"' ([smdSMDtT])\b"), r"'\1"), (re.compile(r"' (ll|re|ve)\b"), r"'\1"),
                 (re.compile(r"' (LL|RE|VE)\b"), r"'\1 "))
SPACE = "\u2581"


def is_punctuation(char: str) -> bool:
  """ASCII symbols and punctuation, or any Unicode punctuation category."""
  code = ord(char)
  return (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
          or unicodedata.category(char).startswith("P"))


def _split_punctuation(token: str) -> list[str]:
  """A leading and a trailing run of punctuation as words of their own; an all-punctuation
  token stays whole."""
  if len(token) < 2:
    return [token]
  start = 0
  while start < len(token) and is_punctuation(token[start]):
    start += 1
  if start == len(token):
    return [token]
  end = len(token)
  while end > start and is_punctuation(token[end - 1]):
    end -= 1
  return [part for part in (token[:start], token[start:end], token[end:]) if part]


def pre_tokenize(text: str) -> list[str]:
  """Steps 1-3: the words handed to SentencePiece."""
  text = text.strip().replace("``", '"').replace("''", '"').translate(_TYPOGRAPHY)
  line = " ".join(part for token in text.split() for part in _split_punctuation(token))
  for pattern, replacement in _CONTRACTIONS:
    line = pattern.sub(replacement, line)
  return line.split()


def dropped(pieces: Sequence[str], i: int) -> bool:
  """Step 4's rule: a lone "▁" goes when it is last or the next piece starts with
  punctuation."""
  return pieces[i] == SPACE and (i + 1 == len(pieces) or is_punctuation(pieces[i + 1][0]))


def pieces(processor, text: str) -> list[str]:
  """Steps 1-4: the pieces a sentencepiece.SentencePieceProcessor gives for `text`."""
  found = processor.encode(" ".join(pre_tokenize(text)), out_type=str)
  return [piece for i, piece in enumerate(found) if not dropped(found, i)]


def symbol(piece: str) -> str:
  """The dictionary's name of a piece: the bracket spellings of the specials are aliases."""
  return ALIASES.get(piece, piece)


def read_dictionary(path: str) -> dict[str, int]:
  """Step 5: symbol -> id of a fairseq dict.txt ("symbol count" lines), with fairseq's
  specials first and <mask> last. A file that is not one raises ValueError naming the line."""
  index = dict(FIXED)
  next_id = len(index)  # Ids are positions: an overwritten symbol leaves its old id unused.
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except UnicodeDecodeError as e:
    raise ValueError(f"{path} is not a UTF-8 fairseq dictionary ({e}).") from e
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    name, _, count = line.rstrip().rpartition(" ")
    overwrite = count == "#fairseq:overwrite"
    if overwrite:
      name = name.rpartition(" ")[0]
    if not name:
      raise ValueError(f"{path}:{number}: expected 'symbol count', got {line!r}.")
    name = symbol(name)
    if name not in index or overwrite:
      index[name] = next_id
      next_id += 1
  if MASK not in index:
    index[MASK] = next_id
  return index
