"""SQuAD examples as fixed-shape windows: `[CLS] question [SEP] context window [SEP]`.

As the reference implementations build them: the question is cut to `max_query_length`
tokens; a context longer than one window is covered by windows `doc_stride` tokens apart;
each context token keeps its character span in the context (from the tokenizer's pieces),
so a predicted token span maps back to the original text exactly. For training, a window
that does not contain the whole answer (and every window of an unanswerable question) is
labelled no-answer: start = end = 0, the [CLS] position.
"""

from typing import NamedTuple, Sequence

import numpy as np

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.squad import data

NO_ANSWER_POSITION = 0  # [CLS].


class Window(NamedTuple):
  """One window of one example."""
  input_ids: list[int]  # Not padded.
  context_start: int  # Index of the first context token of the window in the context.
  context_offset: int  # Position of that token in input_ids (after [CLS] question [SEP]).
  num_context: int


def window_room(num_question_tokens: int, seq_len: int,
                special: special_tokens.SpecialTokens) -> int:
  """Context tokens one window holds beside the question and the special tokens."""
  return seq_len - num_question_tokens - special.num_pair_specials


def window_starts(num_context: int, room: int, doc_stride: int, qid: str) -> list[int]:
  """First context token of each window; the last window reaches the context's end."""
  if room < 1:
    raise errors.InputError(f"Question {qid!r}: no room for context in a window ({room} tokens).")
  if doc_stride < 1:
    raise errors.InputError(f"doc_stride={doc_stride}: expected a positive number of tokens.")
  if num_context > room and doc_stride > room:
    raise errors.InputError(
        f"Question {qid!r}: its {num_context}-token context needs several windows of {room} "
        f"context tokens, but doc_stride={doc_stride} skips tokens between them; lower "
        "doc_stride or raise seq_len.")
  starts = [0]
  while starts[-1] + room < num_context:
    starts.append(starts[-1] + doc_stride)
  return starts


def max_context_mask(starts: Sequence[int], room: int, num_context: int) -> np.ndarray:
  """[windows, num_context] bool: the window where each token has the most context.

  A token seen by several windows is scored by min(left, right context) + 0.01 * window
  length in each (the reference's rule); answers may only start where it scores best.
  """
  mask = np.zeros((len(starts), num_context), bool)
  best = np.full(num_context, -1.0)
  for w, start in enumerate(starts):
    length = min(room, num_context - start)
    positions = np.arange(start, start + length)
    score = np.minimum(positions - start, start + length - 1 - positions) + 0.01 * length
    better = score > best[positions]
    best[positions[better]] = score[better]
    mask[:, positions[better]] = False
    mask[w, positions[better]] = True
  return mask


def token_span(spans: Sequence[tuple[int, int]], answer: data.Answer) -> tuple[int, int] | None:
  """First and last context token overlapping the answer's characters; None if none do."""
  start_char, end_char = answer.start, answer.start + len(answer.text)
  tokens = [i for i, (start, end) in enumerate(spans)
            if start < end and start < end_char and end > start_char]
  return (tokens[0], tokens[-1]) if tokens else None


class Tokenized(NamedTuple):
  """An example tokenized for windowing."""
  question_ids: list[int]
  context_ids: list[int]
  context_spans: list[tuple[int, int]]  # Character span of each context token.


def tokenize(tokenizer, example: data.Example, max_query_length: int) -> Tokenized:
  context_ids, context_spans = tokenizer.encode_with_offsets(example.context)
  return Tokenized(tokenizer.encode(example.question)[:max_query_length], context_ids,
                   context_spans)


def windows(tokenized: Tokenized, seq_len: int, doc_stride: int, qid: str,
            special: special_tokens.SpecialTokens) -> list[Window]:
  """The example's windows, `[CLS] question [SEP] context[start:start + room] [SEP]` (with
  the tokenizer's specials: `<s> question </s> </s> context </s>` for the AMOS authors')."""
  room = window_room(len(tokenized.question_ids), seq_len, special)
  num_context = len(tokenized.context_ids)
  out = []
  prefix = special.pair(tokenized.question_ids, [])[:-1]
  for start in window_starts(num_context, room, doc_stride, qid):
    piece = tokenized.context_ids[start:start + room]
    out.append(Window(prefix + piece + [special.sep], start, len(prefix), len(piece)))
  return out


def _padded(rows: list[list[int]], seq_len: int, pad_id: int) -> np.ndarray:
  ids = np.full((len(rows), seq_len), pad_id, np.int32)
  for r, row in enumerate(rows):
    ids[r, :len(row)] = row
  return ids


def train_features(examples: Sequence[data.Example], tokenizer, seq_len: int, doc_stride: int,
                   max_query_length: int) -> dict[str, np.ndarray]:
  """`input_ids` [W, seq_len], `start_positions` and `end_positions` [W] over all windows.

  The label is the first answer (train files have one per answerable question).
  """
  rows, starts, ends = [], [], []
  for example in examples:
    tokenized = tokenize(tokenizer, example, max_query_length)
    span = None
    if example.answers and not example.is_impossible:
      span = token_span(tokenized.context_spans, example.answers[0])
    for window in windows(tokenized, seq_len, doc_stride, example.qid, tokenizer.special):
      rows.append(window.input_ids)
      last = window.context_start + window.num_context - 1
      if span is not None and window.context_start <= span[0] and span[1] <= last:
        starts.append(window.context_offset + span[0] - window.context_start)
        ends.append(window.context_offset + span[1] - window.context_start)
      else:
        starts.append(NO_ANSWER_POSITION)
        ends.append(NO_ANSWER_POSITION)
  if not rows:
    raise errors.InputError("No SQuAD examples to convert.")
  return {"input_ids": _padded(rows, seq_len, tokenizer.special.pad),
          "start_positions": np.array(starts, np.int32),
          "end_positions": np.array(ends, np.int32)}


class EvalFeatures(NamedTuple):
  """Windows of dev examples, with what post-processing needs to map tokens to text."""
  input_ids: np.ndarray  # [W, L] int32.
  example_index: np.ndarray  # [W] int32: the example each window belongs to.
  char_start: np.ndarray  # [W, L] int32: context character span of each token; -1 off context.
  char_end: np.ndarray  # [W, L] int32.
  max_context: np.ndarray  # [W, L] bool: the window gives this token its most context.


def eval_features(examples: Sequence[data.Example], tokenizer, seq_len: int, doc_stride: int,
                  max_query_length: int) -> EvalFeatures:
  """Every window of every example, in example order."""
  rows, example_index, char_start, char_end, max_context = [], [], [], [], []
  for index, example in enumerate(examples):
    tokenized = tokenize(tokenizer, example, max_query_length)
    example_windows = windows(tokenized, seq_len, doc_stride, example.qid, tokenizer.special)
    room = window_room(len(tokenized.question_ids), seq_len, tokenizer.special)
    best = max_context_mask([w.context_start for w in example_windows], room,
                            len(tokenized.context_ids))
    spans = np.array(tokenized.context_spans, np.int32).reshape(-1, 2)
    for w, window in enumerate(example_windows):
      rows.append(window.input_ids)
      example_index.append(index)
      starts = np.full(seq_len, -1, np.int32)
      ends = np.full(seq_len, -1, np.int32)
      in_window = slice(window.context_start, window.context_start + window.num_context)
      positions = slice(window.context_offset, window.context_offset + window.num_context)
      starts[positions], ends[positions] = spans[in_window, 0], spans[in_window, 1]
      is_max = np.zeros(seq_len, bool)
      is_max[positions] = best[w, in_window]
      char_start.append(starts)
      char_end.append(ends)
      max_context.append(is_max)
  if not rows:
    raise errors.InputError("No SQuAD examples to convert.")
  return EvalFeatures(_padded(rows, seq_len, tokenizer.special.pad),
                      np.array(example_index, np.int32),
                      np.stack(char_start), np.stack(char_end), np.stack(max_context))
