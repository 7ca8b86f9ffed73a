"""answer(question, context) with a fine-tuned SQuAD export (inference.LoadedEncoder.answer)."""

import jax
import numpy as np

from amos_jax import errors
from amos_jax.formats import encoder_tree
from amos_jax.squad import data
from amos_jax.squad import features
from amos_jax.squad import postprocess

DEFAULT_SEQ_LEN = 384
DEFAULT_DOC_STRIDE = 128
# Windows run in batches padded to a multiple of this, so few shapes are ever compiled.
WINDOW_BATCH = 8


def answer(loaded, question: str, context: str, *, seq_len: int | None = None,
           doc_stride: int | None = None, max_query_length: int = 64, n_best: int = 20,
           max_answer_length: int = 30, null_score_threshold: float = 0.0,
           allow_no_answer: bool = True) -> postprocess.Prediction:
  """The answer span of `question` in `context` ("" when no-answer wins), as fine-tuning
  scores dev; `loaded` is an inference.LoadedEncoder of a SQuAD export.

  seq_len defaults to 384 (at most the export's max_length); doc_stride to 128, or the
  context tokens a window holds when fewer.
  """
  if loaded.task is None or loaded.task.head != encoder_tree.SPAN_HEAD:
    raise errors.InputError("answer() needs a fine-tuned SQuAD export (task head 'span'); this one "
                            f"has {'no task head' if loaded.task is None else loaded.task.name!r}.")
  if not isinstance(question, str) or not isinstance(context, str):
    raise TypeError("answer() takes one question and one context, both str.")
  seq_len = min(seq_len or DEFAULT_SEQ_LEN, loaded.max_length)
  num_question = min(len(loaded.tokenizer.encode(question)), max_query_length)
  room = features.window_room(num_question, seq_len, loaded.tokenizer.special)
  example = data.Example("question", question, context, (), False)
  windows = features.eval_features([example], loaded.tokenizer, seq_len,
                                   doc_stride or min(DEFAULT_DOC_STRIDE, max(room, 1)),
                                   max_query_length)
  num_windows = len(windows.input_ids)
  special = loaded.tokenizer.special
  token_ids = np.full((-(-num_windows // WINDOW_BATCH) * WINDOW_BATCH, seq_len), special.pad,
                      np.int32)
  token_ids[:, :2] = (special.cls, special.sep)  # No all-padding rows.
  token_ids[:num_windows] = windows.input_ids
  start_logits, end_logits = jax.device_get(loaded._logits_fn(loaded.params, token_ids))
  return postprocess.predict(
      [example], windows, start_logits[:num_windows], end_logits[:num_windows], n_best=n_best,
      max_answer_length=max_answer_length, null_score_threshold=null_score_threshold,
      allow_no_answer=allow_no_answer)[example.qid]
