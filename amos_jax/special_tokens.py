"""Special token ids: amos_jax's fixed ones, and the record every tokenizer carries.

Tokenizers amos_jax trains put its specials at fixed ids (AMOS_JAX). A converted checkpoint
keeps its original tokenizer's ids (BERT's [CLS] is 101, the AMOS authors' <s> is 0), so the
code that builds inputs takes them from the tokenizer's `special`, never from constants.
"""

import dataclasses

PAD_ID = 0
UNK_ID = 1
CLS_ID = 2
SEP_ID = 3
MASK_ID = 4

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"

# Token ids that masking never selects.
NEVER_MASKED = (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
  """A tokenizer's special ids and how it joins a pair: `cls a pair_separator b sep`."""
  pad: int
  unk: int
  cls: int
  sep: int
  mask: int
  # Between the two texts of a pair: (sep,) for BERT and amos_jax, (sep, sep) for the AMOS
  # authors' RoBERTa-style `<s> a </s> </s> b </s>`.
  pair_separator: tuple[int, ...]

  def single(self, ids) -> list[int]:
    """`cls ids sep`."""
    return [self.cls, *ids, self.sep]

  def pair(self, ids_a, ids_b) -> list[int]:
    """`cls a pair_separator b sep`."""
    return [self.cls, *ids_a, *self.pair_separator, *ids_b, self.sep]

  @property
  def never_masked(self) -> tuple[int, ...]:
    """Ids that masking never selects."""
    return (self.pad, self.unk, self.cls, self.sep, self.mask)

  @property
  def num_pair_specials(self) -> int:
    """Special tokens a pair adds around its texts."""
    return 2 + len(self.pair_separator)


AMOS_JAX = SpecialTokens(PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID, (SEP_ID,))
