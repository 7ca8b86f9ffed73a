"""The README.md of a Hugging Face export: what the model is, how to load it, how it was
trained and, when the run measured it, how good it is."""

import json
import os

from amos_jax.formats.hf import hf_config

# Pretraining config sections worth a reader's time; data paths and logging are left out.
_PRETRAINING_KEYS = ("num_train_steps", "batch_size", "seq_len", "seed")
_PRETRAINING_SECTIONS = ("objective", "optimizer")
_TOKENIZER_NAMES = {"sentencepiece": "cased SentencePiece", "wordpiece": "BERT's WordPiece",
                    "authors_sentencepiece": "the AMOS/COCO-LM authors' SentencePiece and "
                                             "fairseq dictionary"}
_ORIGINS = {
    "sentencepiece": "The discriminator of an AMOS (or ELECTRA) pretraining run in amos_jax",
    "wordpiece": ("An encoder in amos_jax's architecture that started from a Hugging Face "
                  "BERT or ELECTRA checkpoint (read as it is, or pretrained further)"),
    "authors_sentencepiece": ("An encoder that started from the AMOS/COCO-LM authors' released "
                              "checkpoint (read as it is, or pretrained further in amos_jax)"),
}
# Tokenizers whose code ships in the export (hf/tokenizer_files.py) rather than tokenizer.json.
_REMOTE_CODE_TOKENIZERS = ("authors_sentencepiece",)


def _read_json(path: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _last_eval(metrics_path: str) -> dict | None:
  """The last metrics.jsonl record with eval/ keys: the held-out figures of the run."""
  last = None
  try:
    with open(metrics_path, encoding="utf-8") as f:
      for line in f:
        try:
          record = json.loads(line)
        except ValueError:
          continue  # A line cut short by a crash.
        evals = {k: v for k, v in record.items() if k.startswith("eval/")}
        if evals:
          last = {"step": record.get("step"), **evals}
  except OSError:
    return None
  return last


def _pretraining_summary(config: dict) -> dict:
  summary = {k: config[k] for k in _PRETRAINING_KEYS if k in config}
  for section in _PRETRAINING_SECTIONS:
    for key, value in (config.get(section) or {}).items():
      summary[f"{section}.{key}"] = value
  generator = (config.get("model") or {}).get("generator") or {}
  for key, value in generator.items():
    summary[f"model.generator.{key}"] = value
  data = config.get("data") or {}
  summary["data.source"] = data.get("tfds_name") or (
      "text files" if data.get("text_files") else "amos_jax's bundled sample")
  return summary


def facts_from_workdir(workdir: str, step: int | None = None) -> dict:
  """Card facts of a pretraining workdir: its config and its last held-out evaluation."""
  config = _read_json(os.path.join(workdir, "config.json")) or {}
  return {"source": f"pretraining checkpoint{f' at step {step}' if step is not None else ''}",
          "pretraining": _pretraining_summary(config) if config else None,
          "quality": _last_eval(os.path.join(workdir, "metrics.jsonl")),
          "quality_source": "held-out pretraining evaluation (metrics.jsonl)"}


def facts_from_finetuned(export_dir: str) -> dict:
  """Card facts of a GLUE fine-tuning export (OUT/seed_<s>/best): OUT/results.json's median
  dev metrics, and the pretraining config of its init checkpoint when that is at hand."""
  results = _read_json(os.path.join(export_dir, os.pardir, os.pardir, "results.json")) or {}
  pretraining = None
  init = results.get("init_checkpoint")
  if init:
    config = _read_json(os.path.join(init, "config.json")) or {}
    if "objective" in config:
      pretraining = _pretraining_summary(config)
  quality = None
  if results.get("median"):
    quality = {f"{split}/{name}": value for split, metrics in results["median"].items()
               for name, value in metrics.items()}
  seeds = len(results.get("seeds") or [])
  return {"source": "GLUE fine-tuning export", "pretraining": pretraining,
          "quality": quality,
          "quality_source": f"median dev metrics over {seeds} seeds (results.json)"}


def _table(rows: dict) -> list[str]:
  lines = ["| key | value |", "| --- | --- |"]
  for key, value in rows.items():
    if isinstance(value, float):
      value = f"{value:.4g}"
    lines.append(f"| `{key}` | {value} |")
  return lines


def render(config: dict, task, facts: dict) -> str:
  """Markdown of the card for a config.json dict (hf_config.to_hf) and card facts."""
  head = "AutoModelForSequenceClassification" if task is not None else "AutoModel"
  tags = ["amos_jax", "amos", "electra", "text-encoder"]
  if task is not None:
    tags.append("text-classification")
  lines = ["---", "library_name: transformers", "tags:"] + [f"- {t}" for t in tags] + ["---"]
  tokenizer_kind = config.get(hf_config.TOKENIZER_KEY, "sentencepiece")
  lines += [
      "", "# amos_jax encoder", "",
      f"{_ORIGINS[tokenizer_kind]}, exported to "
      f"transformers ({facts.get('source', 'amos_jax export')}): a "
      f"{config['num_hidden_layers']}-layer post-LN Transformer encoder, hidden size "
      f"{config['hidden_size']}, {config['num_attention_heads']} heads, FFN "
      f"{config['intermediate_size']}, vocabulary {config['vocab_size']} "
      f"({_TOKENIZER_NAMES[tokenizer_kind]}), "
      f"{config['max_position_embeddings']} learned positions plus a "
      f"relative position bias of {config['relative_position_buckets']} "
      f"{config['relative_position_bucket_function']} buckets up to distance "
      f"{config['relative_position_max_distance']}.",
  ]
  if task is not None:
    labels = ", ".join(task.label_names) if task.label_names else "a regression score"
    lines += ["", f"Fine-tuned on `{task.name}`: predicts {labels}."]
  lines += [
      "", "## Use", "", "```python",
      f"from transformers import AutoTokenizer, {head}",
      "tokenizer = AutoTokenizer.from_pretrained(PATH"
      f"{', trust_remote_code=True' if tokenizer_kind in _REMOTE_CODE_TOKENIZERS else ''})",
      f"model = {head}.from_pretrained(PATH, trust_remote_code=True)",
      'outputs = model(**tokenizer(["A sentence.", "Another one."], padding=True,'
      ' return_tensors="pt"))', "```", "",
      "The model code is this directory's `" + hf_config.MODELING_MODULE + ".py`; "
      "`amos_jax.inference.load(PATH)` reads the directory back into amos_jax.",
  ]
  lines += ["", "## Pretraining", ""]
  if facts.get("pretraining"):
    lines += _table(facts["pretraining"])
  else:
    lines.append("Not recorded with this export.")
  lines += ["", "## Quality", ""]
  if facts.get("quality"):
    lines += [f"{facts.get('quality_source', '')}:", ""] + _table(facts["quality"])
  else:
    lines.append("Not measured for this export.")
  return "\n".join(lines) + "\n"
