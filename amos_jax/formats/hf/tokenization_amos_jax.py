"""The AMOS/COCO-LM authors' tokenizer for transformers: their pre-tokenisation, SentencePiece
pieces (sp.model) and fairseq dictionary (dict.txt), with amos_jax's layout of special tokens,
`<s> a </s>` and `<s> a </s> </s> b </s>`.

Copied, with authors_pieces.py (the rules amos_jax's own tokenizer runs, so both give the same
ids), into the Hugging Face export of a model with that tokenizer by amos_jax
(amos_jax/formats/hf_export.py); that import resolves only in the export. Loads with
`AutoTokenizer.from_pretrained(path, trust_remote_code=True)`. The rewriting rules have no
`tokenizers` pipeline, hence a Python tokenizer.
"""

import os
import shutil

import sentencepiece as spm
from transformers import PreTrainedTokenizer

from .authors_pieces import DICTIONARY_FILE, SENTENCEPIECE_FILE, pieces, read_dictionary, symbol


class AmosJaxAuthorsTokenizer(PreTrainedTokenizer):
  """Text -> the authors' pieces -> dict.txt ids; text never yields a special token
  (split_special_tokens), as in amos_jax, where "<mask>" written in text is characters."""
  vocab_files_names = {"sentencepiece_file": SENTENCEPIECE_FILE,
                       "dictionary_file": DICTIONARY_FILE}
  # Segments come from the </s> tokens inside the model, as in amos_jax.
  model_input_names = ["input_ids", "attention_mask"]

  def __init__(self, sentencepiece_file: str, dictionary_file: str, cls_token="<s>",
               bos_token="<s>", sep_token="</s>", eos_token="</s>", pad_token="<pad>",
               unk_token="<unk>", mask_token="<mask>", **kwargs):
    # Set before the base class's __init__, which asks get_vocab for the specials' ids.
    self.sentencepiece_file = sentencepiece_file
    self.dictionary_file = dictionary_file
    self.processor = spm.SentencePieceProcessor(model_file=sentencepiece_file)
    self.index = read_dictionary(dictionary_file)
    self.symbols = {index: name for name, index in self.index.items()}
    kwargs.setdefault("split_special_tokens", True)
    super().__init__(cls_token=cls_token, bos_token=bos_token, sep_token=sep_token,
                     eos_token=eos_token, pad_token=pad_token, unk_token=unk_token,
                     mask_token=mask_token, special_tokens_pattern="cls_double_sep",
                     token_type_ids_pattern="all_zeros", **kwargs)

  @property
  def vocab_size(self) -> int:
    """Ids the dictionary gives, <mask> included (an overwritten symbol leaves a gap)."""
    return max(self.index.values()) + 1

  def get_vocab(self) -> dict[str, int]:
    return dict(self.index)

  def _tokenize(self, text: str, **kwargs) -> list[str]:
    return pieces(self.processor, text)

  def _convert_token_to_id(self, token: str) -> int:
    return self.index.get(symbol(token), self.index["<unk>"])

  def _convert_id_to_token(self, index: int) -> str:
    return self.symbols.get(index, "<unk>")

  def convert_tokens_to_string(self, tokens: list[str]) -> str:
    return self.processor.decode_pieces(tokens)

  def save_vocabulary(self, save_directory: str,
                      filename_prefix: str | None = None) -> tuple[str, ...]:
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    saved = []
    for source, name in ((self.sentencepiece_file, SENTENCEPIECE_FILE),
                         (self.dictionary_file, DICTIONARY_FILE)):
      target = os.path.join(save_directory, prefix + name)
      if os.path.abspath(source) != os.path.abspath(target):
        shutil.copyfile(source, target)
      saved.append(target)
    return tuple(saved)


__all__ = ["AmosJaxAuthorsTokenizer"]
