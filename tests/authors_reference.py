"""Independent PyTorch reference of the authors' released AMOS / COCO-LM encoder and tokenizer.

Test support only (not collected by pytest, not imported by amos_jax). Written from reading,
not copying, the public repositories microsoft/AMOS and microsoft/COCO-LM (their huggingface/
and fairseq/ folders are the same code apart from names):
  huggingface/amos/modeling_amos.py        AMOSModel forward, relative_position_bucket, key names
  huggingface/amos/configuration_amos.py   config keys and defaults (HUB_CONFIG_DEFAULTS below)
  huggingface/amos/tokenization_amos.py    SentencepiecePreTokenizer, skip_space, encode_plus
  huggingface/amos/tokenization_utils.py   Dictionary (ids, alias names, dict.txt parsing)
  fairseq/fairseq/modules/transformer_sentence_encoder{,_layer}.py, models/amos/model.py,
  models/cocolm/model.py                   fairseq key names (hf_to_fairseq_state_dict)
docs/checkpoints.md lists the behaviour this reproduces.
"""
import argparse
import math
import re
import unicodedata

import torch
import torch.nn.functional as F
from torch import nn

# AMOSConfig / COCOLMConfig defaults; the hub config.json files override most of them
# (cocolm-base: hidden 768, 12 layers, 12 heads, ffn 3072, vocab 64000, type_vocab_size 0,
# rel_pos_bins 64, max_rel_pos 128, layer_norm_eps 1e-5, layer_norm_type "post",
# cls_dropout_prob 0.1).
HUB_CONFIG_DEFAULTS = dict(vocab_size=30522,
                           embedding_size=128,
                           hidden_size=256,
                           num_hidden_layers=12,
                           num_attention_heads=4,
                           intermediate_size=1024,
                           hidden_act="gelu",
                           hidden_dropout_prob=0.1,
                           attention_probs_dropout_prob=0.1,
                           max_position_embeddings=512,
                           type_vocab_size=2,
                           initializer_range=0.02,
                           layer_norm_eps=1e-12,
                           pad_token_id=0,
                           rel_pos_bins=0,
                           max_rel_pos=0,
                           layer_norm_type="post")

_ACT = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


def relative_position_bucket(rel, num_buckets, max_distance):
  """Signed bucket of rel = key - query: |rel| < num_buckets//4 is exact, then log-spaced up to
    num_buckets//2 - 1 (ceil, float32 log like the authors), times sign(rel). Not yet shifted."""
  half = num_buckets // 2
  exact = half // 2
  n = rel.abs()
  log_part = torch.log(n.float().clamp(min=1) / exact) / math.log((max_distance - 1) / exact)
  large = (exact + torch.ceil(log_part * (half - 1 - exact)).long()).clamp(max=half - 1)
  return torch.where(n < exact, n, large) * torch.sign(rel)


def bucket_table(max_positions, num_buckets, max_distance):
  """[P, P] bucket ids (query row, key column), shifted by minus the minimum over the whole
    P x P table, so the shift depends on P (max_position_embeddings), not on the batch length."""
  pos = torch.arange(max_positions)
  table = relative_position_bucket(pos[None, :] - pos[:, None], num_buckets, max_distance)
  return table - table.min()


def _layer(cfg):
  h, ffn, eps = cfg["hidden_size"], cfg["intermediate_size"], cfg["layer_norm_eps"]
  attention = nn.ModuleDict(
      dict(self_attn=nn.ModuleDict(dict(in_proj=nn.Linear(h, 3 * h), out_proj=nn.Linear(h, h))),
           LayerNorm=nn.LayerNorm(h, eps=eps)))
  return nn.ModuleDict(
      dict(attention=attention,
           intermediate=nn.ModuleDict(dict(dense=nn.Linear(h, ffn))),
           output=nn.ModuleDict(dict(dense=nn.Linear(ffn, h), LayerNorm=nn.LayerNorm(h, eps=eps)))))


class AuthorsBody(nn.Module):
  """AMOSModel / COCOLMModel without the outer prefix: embeddings.*, encoder.layer.{i}.*,
    relative_attention_bias.weight [rel_pos_bins, heads]. forward -> last hidden states [B, L, H].
    Only layer_norm_type "post" (every released config); the authors' "pre"/"hybrid" variants
    (see the notes) change the key set and are refused here."""

  def __init__(self, config):
    super().__init__()
    cfg = {**HUB_CONFIG_DEFAULTS, **config}
    self.cfg = cfg
    h = cfg["hidden_size"]
    if cfg["layer_norm_type"] != "post":
      raise NotImplementedError(f"layer_norm_type {cfg['layer_norm_type']!r}")
    emb = nn.ModuleDict(
        dict(word_embeddings=nn.Embedding(cfg["vocab_size"], h, padding_idx=0),
             position_embeddings=nn.Embedding(cfg["max_position_embeddings"], h)))
    if cfg["type_vocab_size"] > 0:
      emb["token_type_embeddings"] = nn.Embedding(cfg["type_vocab_size"], h)
    emb["LayerNorm"] = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
    self.embeddings = emb
    self.encoder = nn.ModuleDict(
        dict(layer=nn.ModuleList(_layer(cfg) for _ in range(cfg["num_hidden_layers"]))))
    if cfg["rel_pos_bins"] > 0:
      self.relative_attention_bias = nn.Embedding(cfg["rel_pos_bins"], cfg["num_attention_heads"])
      table = bucket_table(cfg["max_position_embeddings"], cfg["rel_pos_bins"], cfg["max_rel_pos"])
      self.register_buffer("rp_bucket", table, persistent=False)  # not in the checkpoint
    self.hidden_dropout = nn.Dropout(cfg["hidden_dropout_prob"])
    self.attn_dropout = nn.Dropout(cfg["attention_probs_dropout_prob"])
    self.act = _ACT[cfg["hidden_act"]]

  def _attention(self, block, x, bias):
    b, l, h = x.shape
    heads = self.cfg["num_attention_heads"]
    q, k, v = block["self_attn"]["in_proj"](x).chunk(3, dim=-1)  # rows: q, then k, then v
    q, k, v = (t.reshape(b, l, heads, h // heads).transpose(1, 2) for t in (q, k, v))
    scores = (q * (h // heads)**-0.5) @ k.transpose(-1, -2) + bias  # bias added unscaled
    probs = self.attn_dropout(torch.softmax(scores, dim=-1))
    out = block["self_attn"]["out_proj"]((probs @ v).transpose(1, 2).reshape(b, l, h))
    out = out.masked_fill(out != out, 0.0)  # rows with every key padded give NaN -> 0
    return block["LayerNorm"](x + self.attn_dropout(out))  # authors use attention dropout here

  def forward(self, input_ids, attention_mask=None, token_type_ids=None):
    cfg = self.cfg
    b, l = input_ids.shape
    if attention_mask is None:
      attention_mask = torch.ones_like(input_ids)
    emb = self.embeddings
    x = emb["word_embeddings"](input_ids) + emb["position_embeddings"].weight[:l][
        None]  # positions 0..L-1
    if "token_type_embeddings" in emb:
      tt = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
      x = x + emb["token_type_embeddings"](tt)
    x = self.hidden_dropout(emb["LayerNorm"](x)) * attention_mask[..., None].to(
        x.dtype)  # padded rows zeroed
    heads = cfg["num_attention_heads"]
    if cfg["rel_pos_bins"] > 0:
      bias = self.relative_attention_bias.weight[self.rp_bucket[:l, :l]].permute(2, 0, 1)
    else:
      bias = x.new_zeros(heads, l, l)
    bias = bias[None].expand(b, heads, l, l).masked_fill((attention_mask == 0)[:, None, None, :],
                                                         float("-inf"))
    for layer in self.encoder["layer"]:
      a = self._attention(layer["attention"], x, bias)
      y = layer["output"]["dense"](self.act(layer["intermediate"]["dense"](a)))  # no dropout inside
      x = layer["output"]["LayerNorm"](a + self.hidden_dropout(y))
    return x  # no final LayerNorm


class AuthorsModel(nn.Module):
  """The body under the hub prefix ("amos" for microsoft/amos, "cocolm" for microsoft/cocolm-*),
    so state_dict() keys read e.g. amos.encoder.layer.0.attention.self_attn.in_proj.weight."""

  def __init__(self, config, prefix="amos"):
    super().__init__()
    self.prefix = prefix
    self.add_module(prefix, AuthorsBody(config))

  def forward(self, input_ids, attention_mask=None, token_type_ids=None):
    return getattr(self, self.prefix)(input_ids, attention_mask, token_type_ids)


_HF_TO_FAIRSEQ_LAYER = {
    "attention.self_attn.in_proj": "self_attn.in_proj",
    "attention.self_attn.out_proj": "self_attn.out_proj",
    "attention.LayerNorm": "self_attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "output.LayerNorm": "final_layer_norm"
}
_HF_TO_FAIRSEQ_TOP = {
    "embeddings.word_embeddings.weight": "embed_tokens.weight",
    "embeddings.position_embeddings.weight": "embed_positions.weight",
    "embeddings.LayerNorm.weight": "emb_layer_norm.weight",
    "embeddings.LayerNorm.bias": "emb_layer_norm.bias",
    "relative_attention_bias.weight": "relative_attention_bias.weight"
}


def hf_to_fairseq_state_dict(state_dict,
                             head_name="sentence_classification_head",
                             nested=False,
                             config=None):
  """Rename a post-LN hub state dict (prefixed "amos."/"cocolm." or not) to the fairseq names.
    The released model.pt files are loaded by the authors' trainer as a FLAT state dict
    (trainer.load_checkpoint passes the whole torch.load result to load_state_dict, strict=False);
    nested=True (needs config, the hub config dict) gives the usual fairseq
    {"model": ..., "args": Namespace} layout instead.
    classifier.* maps to classification_heads.<head_name>.* (fairseq head uses tanh, HF uses
    GELU)."""
  out, prefix = {}, "encoder.sentence_encoder."
  for key, value in state_dict.items():
    for p in ("amos.", "cocolm."):
      key = key[len(p):] if key.startswith(p) else key
    if key.startswith("classifier."):
      out[f"classification_heads.{head_name}.{key[len('classifier.'):]}"] = value
      continue
    match = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", key)
    if match:
      name = _HF_TO_FAIRSEQ_LAYER[match.group(2)]
      out[f"{prefix}layers.{match.group(1)}.{name}.{match.group(3)}"] = value
    elif key in _HF_TO_FAIRSEQ_TOP:
      out[prefix + _HF_TO_FAIRSEQ_TOP[key]] = value
    else:
      raise KeyError(f"no fairseq name for {key}")
  if not nested:
    return out
  cfg = {**HUB_CONFIG_DEFAULTS, **config}
  args = argparse.Namespace(arch="amos_base",
                            encoder_layers=cfg["num_hidden_layers"],
                            encoder_embed_dim=cfg["hidden_size"],
                            encoder_ffn_embed_dim=cfg["intermediate_size"],
                            encoder_attention_heads=cfg["num_attention_heads"],
                            max_positions=cfg["max_position_embeddings"],
                            rel_pos=1,
                            rel_pos_bins=cfg["rel_pos_bins"],
                            max_rel_pos=cfg["max_rel_pos"],
                            activation_fn="gelu",
                            pooler_activation_fn="tanh")
  return {"model": out, "args": args}


# ---------------------------------------------------------------- tokenizer
_QUOTES = str.maketrans({
    "\u2018": "'",
    "\u2019": "'",
    "\u00b4": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2014": "-",
    "\u2013": "-"
})
_CONTRACTIONS = [(r"' ([smdSMDtT])\b", r"'\1"), (r"' ll\b", "'ll"), (r"' re\b", "'re"),
                 (r"' ve\b", "'ve"), (r"' LL\b", "'LL "), (r"' RE\b", "'RE "), (r"' VE\b", "'VE ")]
_ALIAS = {"<s>": "[CLS]", "<pad>": "[PAD]", "</s>": "[SEP]", "<unk>": "[UNK]", "<mask>": "[MASK]"}


def is_punct(ch):
  cp = ord(ch)
  return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 \
      or unicodedata.category(ch).startswith("P")


def _split_edges(token):
  """A leading run of punctuation and a trailing run become separate words (inner ones stay)."""
  if len(token) < 2 or not (is_punct(token[0]) or is_punct(token[-1])):
    return [token]
  start = next((j for j in range(1, len(token)) if not is_punct(token[j])), None) if is_punct(
      token[0]) else 0
  if start is None:  # all punctuation
    return [token]
  core, lead = token[start:], token[:start]
  if not is_punct(core[-1]):
    return [p for p in (lead, core) if p]
  end = next((j + 1 for j in range(len(core) - 2, -1, -1) if not is_punct(core[j])), len(core))
  return [p for p in (lead, core[:end], core[end:]) if p]


def authors_pretokenize(text):
  text = text.strip().replace("``", '"').replace("''", '"').translate(_QUOTES)
  words = [w for token in text.split() for w in _split_edges(token)]
  line = " ".join(words)
  for pattern, repl in _CONTRACTIONS:
    line = re.sub(pattern, repl, line)
  return line.split()


def authors_pieces(sp, text):
  """SentencePiece pieces of the pre-tokenised text; a lone "\u2581" piece is dropped when it is
    last or the next piece starts with punctuation."""
  pieces = sp.encode(" ".join(authors_pretokenize(text)), out_type=str)
  return [
      p for i, p in enumerate(pieces)
      if not (p == "\u2581" and (i == len(pieces) - 1 or is_punct(pieces[i + 1][0])))
  ]


def load_authors_dict(dict_txt_path):
  """symbol -> id: [CLS]=0 [PAD]=1 [SEP]=2 [UNK]=3, then new dict.txt symbols in file order,
    then [MASK]. <s>/<pad>/</s>/<unk>/<mask> are aliases of the bracket names."""
  index = {"[CLS]": 0, "[PAD]": 1, "[SEP]": 2, "[UNK]": 3}
  next_id = 4
  with open(dict_txt_path, encoding="utf-8") as f:
    for line in f:
      parts = line.rstrip().rsplit(" ", 1)
      word, overwrite = parts[0], len(parts) > 1 and parts[1] == "#fairseq:overwrite"
      if overwrite:
        word = word.rsplit(" ", 1)[0]
      elif word in index:
        continue  # duplicate line (HF reader skips it; fairseq's raises)
      word = _ALIAS.get(word, word)
      if word not in index or overwrite:
        index[word], next_id = next_id, next_id + 1
  if "[MASK]" not in index:
    index["[MASK]"] = next_id
  return index


def authors_encode(sp_model_path, dict_txt_path, text, text_pair=None, max_length=512):
  """<s> a </s>  or  <s> a </s> </s> b </s>; pieces truncated before mapping (single: max_length-2;
    pair: max_length-4, dropping the last piece of the longer side, of b on ties)."""
  import sentencepiece as spm

  sp = spm.SentencePieceProcessor(model_file=sp_model_path)
  index = load_authors_dict(dict_txt_path)
  ids = lambda pieces: [index.get(_ALIAS.get(p, p), 3) for p in pieces]  # noqa: E731
  a = authors_pieces(sp, text)
  if text_pair is None:
    return [0] + ids(a[:max_length - 2]) + [2]
  b = authors_pieces(sp, text_pair)
  while len(a) + len(b) > max_length - 4:
    (a if len(a) > len(b) else b).pop()
  return [0] + ids(a) + [2, 2] + ids(b) + [2]


def write_fairseq_dict(sp_model_path, out_path, pad_to_multiple=1):
  """dict.txt for a SentencePiece model: "piece count" per line in piece-id order (counts
    descending), control and unknown pieces left out (fairseq's four specials come first anyway);
    optional madeupwordNNNN lines so that 4 + lines is a multiple of pad_to_multiple."""
  import sentencepiece as spm

  sp = spm.SentencePieceProcessor(model_file=sp_model_path)
  n = sp.get_piece_size()
  lines = [
      f"{sp.id_to_piece(i)} {n - i}" for i in range(n) if not (sp.is_control(i) or sp.is_unknown(i))
  ]
  real = len(lines)
  while (4 + len(lines)) % pad_to_multiple:
    lines.append(f"madeupword{len(lines) - real:04d} 0")
  with open(out_path, "w", encoding="utf-8") as f:
    f.write("".join(line + "\n" for line in lines))
  return len(lines)
