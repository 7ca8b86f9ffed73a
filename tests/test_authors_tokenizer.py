"""The AMOS authors' tokenizer's character offsets: the ids of encode, spans covering exactly
the original characters each token was rewritten from, and SQuAD answers mapped back to the
context's own text. (Its ids against the authors' code: tests/test_released_checkpoints.py.)"""

import numpy as np
import pytest

from amos_jax.data import authors_tokenizer
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.squad import features
from amos_jax.squad import postprocess
from amos_jax.squad.data import Answer, Example
from tests import authors_reference
from tests import export_helpers

# Every rewrite of the authors' pre-tokenisation, around the answers below.
CONTEXTS = [
    '("Hello," she said.)  They\u2019ll say \u201cdon\'t\u201d \u2014 and O\'Neill agreed.',
    "``Quoted'' words, \u2018single\u2019 ones and acute\u00b4s: it's 1,000.50 or $3.50 "
    "\u2013 7% off.",
    "  caf\u00e9 na\u00efve  Z\u00fcrich\tis\n\nnear   the lake;  they don't.  ",
    "Don ' t split ; WE ' LL-see . The dogs ' s toys , she said -- \"Yes!\"",
]
ANSWERS = ["Hello", "she said", "They\u2019ll", "don't", "O'Neill", "``Quoted''", "single",
           "1,000.50", "$3.50", "7%", "caf\u00e9", "na\u00efve", "Z\u00fcrich", "the lake",
           "Yes"]
# Text SentencePiece itself rewrites (NFKC: a ligature, a combining accent), characters
# outside the vocabulary, other whitespace, quote runs, and nothing at all.
ODD_TEXTS = ["\ufb01ne cafe\u0301 \U0001f600 x\u00a0y\u3000z\x1cw \u4e2d\u6587",
             "'''`` ` '' ' ``", "", " \t\n"]
# U+2581 is SentencePiece's own space: the authors' tokenizer drops it from the ids, so no
# span covers it.
SPACE_TEXT = "\u2581 a \u2581 b \u2581,"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  """sp.model trained on the contexts (so few of their characters are unknown) and its
  dict.txt."""
  directory = tmp_path_factory.mktemp("authors_tokenizer")
  lines = export_helpers.sentences(300) + CONTEXTS * 20
  model = tokenizer_lib.train_tokenizer(lines, str(directory / "sp.model"), vocab_size=200)
  authors_reference.write_fairseq_dict(model.model_path, str(directory / "dict.txt"))
  return authors_tokenizer.load(str(directory))


def rewritten(text):
  """Step 1 of the authors' pre-tokenisation, as their code does it (tests/authors_reference)."""
  return text.replace("``", '"').replace("''", '"').translate(authors_reference._QUOTES)


def check_spans(text, ids, spans, tokenizer):
  """The ids are encode's; the spans lie in `text` in order without overlapping."""
  assert ids == tokenizer.encode(text)
  assert len(spans) == len(ids)
  previous_end = 0
  for start, end in spans:
    assert previous_end <= start <= end <= len(text)
    previous_end = end


@pytest.mark.parametrize("text", CONTEXTS + ODD_TEXTS)
def test_spans_cover_every_non_space_character_once(tokenizer, text):
  ids, spans = tokenizer.encode_with_offsets(text)
  check_spans(text, ids, spans, tokenizer)
  # With the order and no overlap, this says each non-space character is in exactly one
  # token and no token holds whitespace.
  assert "".join(text[start:end] for start, end in spans) == "".join(text.split())


@pytest.mark.parametrize("text", CONTEXTS)
def test_each_span_rewrites_to_its_token(tokenizer, text):
  ids, spans = tokenizer.encode_with_offsets(text)
  assert tokenizer.special.unk not in ids  # So the check below holds for every token.
  assert [rewritten(text[start:end]) for start, end in spans] == [
      tokenizer.decode([token]) for token in ids]


def test_sentencepiece_spaces_in_the_text_are_dropped_as_encode_drops_them(tokenizer):
  ids, spans = tokenizer.encode_with_offsets(SPACE_TEXT)
  check_spans(SPACE_TEXT, ids, spans, tokenizer)
  assert "".join(SPACE_TEXT[start:end] for start, end in spans).replace("\u2581", "") == "ab,"


def examples():
  for context in CONTEXTS:
    for answer in ANSWERS:
      if answer in context:
        yield Example("q", "What was it?", context,
                      (Answer(answer, context.index(answer)),), False)


def test_answers_map_back_to_their_exact_text(tokenizer):
  """Training labels point at tokens whose spans are the answer, and a prediction of those
  tokens is the answer, in every window that holds it."""
  cases = list(examples())
  assert {example.answers[0].text for example in cases} == set(ANSWERS)
  seq_len, stride, query = 32, 8, 8
  for example in cases:
    train = features.train_features([example], tokenizer, seq_len, stride, query)
    evaluated = features.eval_features([example], tokenizer, seq_len, stride, query)
    answered = np.flatnonzero(train["start_positions"])
    assert answered.size, example.answers[0].text
    for window in answered:
      start, end = train["start_positions"][window], train["end_positions"][window]
      text = example.context[evaluated.char_start[window, start]:
                             evaluated.char_end[window, end]]
      assert text == example.answers[0].text
      start_logits, end_logits = (np.zeros(evaluated.input_ids.shape, np.float32)
                                  for _ in range(2))
      start_logits[window, start] = end_logits[window, end] = 10.0
      # This window alone may start answers, wherever it gives a token the most context.
      max_context = np.zeros_like(evaluated.max_context)
      max_context[window] = evaluated.char_start[window] >= 0
      prediction = postprocess.predict([example], evaluated._replace(max_context=max_context),
                                       start_logits, end_logits,
                                       allow_no_answer=False)[example.qid]
      assert prediction.text == example.answers[0].text
