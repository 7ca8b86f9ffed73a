"""Time to read a released-size AMOS/COCO-LM checkpoint and write it as an amos_jax export.

python -m benchmarks.convert_checkpoint                 # base: 12 x 768, vocabulary 64,000
python -m benchmarks.convert_checkpoint --size=small    # quicker, for a check

Builds, in a temporary directory, a checkpoint in the authors' Hugging Face layout with random
weights (reading time does not depend on them): config.json with their keys, a torch
pytorch_model.bin under "amos.", a SentencePiece model and a dict.txt that give the
vocabulary's 64,000 ids. Then times formats.registry.load (torch pickle -> float32 numpy ->
the checked amos_jax tree) and registry.write_export (the flax export), and prints both with
the parameter count.
"""

import json
import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import registry

_SIZE = flags.DEFINE_enum("size", "base", ["small", "base", "large"], "The authors' sizes.")
SIZES = {  # layers, hidden, heads, ffn, relative bins, maximum distance
    "small": (12, 256, 4, 1024, 64, 128),
    "base": (12, 768, 12, 3072, 64, 128),
    "large": (24, 1024, 16, 4096, 128, 256),
}
VOCAB_SIZE = 64_000
MAX_POSITIONS = 512


def authors_state_dict(layers, hidden, ffn, bins, heads, rng):
  """Random float32 torch tensors under the authors' Hugging Face names."""
  import torch
  shapes = {"embeddings.word_embeddings.weight": (VOCAB_SIZE, hidden),
            "embeddings.position_embeddings.weight": (MAX_POSITIONS, hidden),
            "embeddings.LayerNorm.weight": (hidden,), "embeddings.LayerNorm.bias": (hidden,),
            "relative_attention_bias.weight": (bins, heads)}
  for i in range(layers):
    layer = f"encoder.layer.{i}."
    shapes.update({
        layer + "attention.self_attn.in_proj.weight": (3 * hidden, hidden),
        layer + "attention.self_attn.in_proj.bias": (3 * hidden,),
        layer + "attention.self_attn.out_proj.weight": (hidden, hidden),
        layer + "attention.self_attn.out_proj.bias": (hidden,),
        layer + "attention.LayerNorm.weight": (hidden,),
        layer + "attention.LayerNorm.bias": (hidden,),
        layer + "intermediate.dense.weight": (ffn, hidden),
        layer + "intermediate.dense.bias": (ffn,),
        layer + "output.dense.weight": (hidden, ffn), layer + "output.dense.bias": (hidden,),
        layer + "output.LayerNorm.weight": (hidden,), layer + "output.LayerNorm.bias": (hidden,),
    })
  return {"amos." + name: torch.from_numpy(
      rng.standard_normal(shape, dtype=np.float32) * 0.02) for name, shape in shapes.items()}


def write_checkpoint(directory: str, size: str) -> int:
  """The checkpoint's files; returns its parameter count."""
  import torch
  layers, hidden, heads, ffn, bins, max_distance = SIZES[size]
  state = authors_state_dict(layers, hidden, ffn, bins, heads, np.random.default_rng(0))
  torch.save(state, os.path.join(directory, "pytorch_model.bin"))
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(dict(vocab_size=VOCAB_SIZE, hidden_size=hidden, num_hidden_layers=layers,
                   num_attention_heads=heads, intermediate_size=ffn,
                   max_position_embeddings=MAX_POSITIONS, type_vocab_size=0, rel_pos_bins=bins,
                   max_rel_pos=max_distance, layer_norm_type="post", layer_norm_eps=1e-5,
                   hidden_act="gelu"), f)
  words = [f"word{i}" for i in range(2000)]
  tokenizer_lib.train_tokenizer([" ".join(words[i:i + 20]) for i in range(0, 2000, 5)],
                                os.path.join(directory, "sp.model"), vocab_size=500)
  with open(os.path.join(directory, "dict.txt"), "w", encoding="utf-8") as f:
    # 4 fairseq specials + these + <mask> = the embedding's 64,000 rows.
    f.writelines(f"piece{i} {VOCAB_SIZE - i}\n" for i in range(VOCAB_SIZE - 5))
  return sum(int(np.prod(t.shape)) for t in state.values())


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as directory:
    checkpoint = os.path.join(directory, "checkpoint")
    os.makedirs(checkpoint)
    num_params = write_checkpoint(checkpoint, _SIZE.value)
    size_mb = os.path.getsize(os.path.join(checkpoint, "pytorch_model.bin")) / 1e6
    start = time.perf_counter()
    loaded = registry.load(checkpoint)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    registry.write_export(loaded.params, loaded.model_config, loaded.tokenizer,
                          os.path.join(directory, "export"))
    write_s = time.perf_counter() - start
  print(f"size: {_SIZE.value}, {num_params / 1e6:.1f}M parameters, "
        f"pytorch_model.bin {size_mb:.0f} MB")
  print(f"read (registry.load): {read_s:.2f} s")
  print(f"write (flax export): {write_s:.2f} s")


if __name__ == "__main__":
  app.run(main)
