"""Shared defaults for every preset; size presets override only what differs.

The size table (AMOS.md, released code):
  name   layers hidden heads  ffn   generator blocks / MLM depths
  tiny      2     64     2    256   3 / [1, 2, 3]   (CPU tests and quickstart)
  mini      4    128     2    512   3 / [1, 2, 3]   (a CPU-hour pretraining budget)
  small    12    256     4   1024   8 / [4, 6, 8]
  base     12    768    12   3072   8 / [4, 6, 8]
  large    24   1024    16   4096   8 / [4, 6, 8]
"""

import ml_collections

SIZES = {
    # name: (layers, hidden, heads, ffn, mlm_layers)
    "tiny": (2, 64, 2, 256, (1, 2, 3)),
    "mini": (4, 128, 2, 512, (1, 2, 3)),
    "small": (12, 256, 4, 1024, (4, 6, 8)),
    "base": (12, 768, 12, 3072, (4, 6, 8)),
    "large": (24, 1024, 16, 4096, (4, 6, 8)),
}


def model_config(size: str) -> ml_collections.ConfigDict:
  """Discriminator and generator hyperparameters for one size of the table above."""
  layers, hidden, heads, ffn, mlm_layers = SIZES[size]
  return ml_collections.ConfigDict(dict(
      vocab_size=32768,
      hidden_size=hidden,
      num_layers=layers,
      num_heads=heads,
      ffn_size=ffn,
      dropout_rate=0.1,
      # Dropout on the attention probabilities (AMOS's fairseq attention_dropout, ELECTRA's
      # attention_probs_dropout_prob). Not with attention_implementation="cudnn".
      attention_dropout_rate=0.1,
      # N(0, init_std) weights. BERT's 0.02 suits widths of 256 and more; narrower models
      # need larger values or their attention starts (and long stays) uniform.
      init_std=0.02,
      max_position_embeddings=512,
      # Bucketed relative position bias shared across layers; 0 buckets turns it off.
      relative_position_buckets=64,
      relative_position_max_distance=128,
      # "amos": the AMOS/COCO-LM authors' signed, ceil-of-log buckets (the default since
      # 2026-12-04); "t5_bidirectional": T5's, which models trained earlier use (their
      # config.json lacks this key, so they keep loading with it).
      relative_position_bucket_function="amos",
      layer_norm_eps=1e-5,  # AMOS's released configs; BERT and ELECTRA use 1e-12.
      # Token-type (segment) embeddings, as BERT and ELECTRA have; AMOS has none (0). Types
      # count the sep_token_id tokens before each position (models/amos.py).
      type_vocab_size=0,
      # The tokenizer's padding and separator ids (amos_jax.special_tokens); a converted
      # checkpoint keeps its own (BERT: 0 and 102, the AMOS authors': 1 and 2).
      pad_token_id=0,
      sep_token_id=3,
      # Token embedding width when narrower than hidden_size (ELECTRA-Small: 128 under 256),
      # projected up after the embedding LayerNorm; 0: hidden_size.
      embedding_size=0,
      # The fine-tuning head's activation: "tanh" (the authors' fairseq head) or "gelu"
      # (their Hugging Face head).
      classifier_activation="tanh",
      # Compute in `dtype`, keep parameters in `param_dtype`.
      dtype="float32",
      param_dtype="float32",
      # None or "xla": amos_jax's attention in plain XLA ops (models/attention.py), on any
      # backend. "cudnn": cuDNN flash attention through jax.nn.dot_product_attention, GPU
      # only. A placeholder so that --config.model.attention_implementation=cudnn can set it.
      attention_implementation=ml_collections.config_dict.placeholder(str),
      # Recompute each transformer block's activations in the backward pass instead of
      # keeping them (jax.checkpoint): far less memory for about a third more FLOPs, for
      # batches that do not fit otherwise (docs/gpu_tpu.md has the measured savings).
      remat=False,
      generator=ml_collections.ConfigDict(dict(
          # The generator has the discriminator's width; one MLM is read after each depth.
          mlm_layers=list(mlm_layers),
          dropout_rate=0.0,
          attention_dropout_rate=0.0,
      )),
  ))


def objective_config() -> ml_collections.ConfigDict:
  """AMOS objective; ELECTRA is the one-depth, non-adversarial setting of the same code."""
  return ml_collections.ConfigDict(dict(
      mask_prob=0.15,
      # "learned": AMOS mixture trained adversarially; "uniform": fixed equal weights (ablation).
      mixture="learned",
      temperature=0.3,  # Gumbel-Softmax tau; only shapes the backward pass.
      disc_grad_mul=-1.0,  # Gradient reversal into the mixture; 0 cuts the adversarial signal.
      # True: the reversed gradient trains the mixture vector w only, not the generator blocks
      # through the features w . f_k (an ablation; the authors' code lets it through).
      detach_mixture_features=False,
      disc_weight=50.0,
  ))


def optimizer_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      learning_rate=5e-4,
      warmup_steps=10_000,
      b1=0.9,
      b2=0.98,
      eps=1e-6,
      weight_decay=0.01,
      grad_clip_norm=1.0,
      # The relative position bias tables learn at learning_rate times this: Adam moves a
      # table entry (a logit offset) by about the rate per step (train/optimizer.py).
      position_bias_lr_multiplier=1.0,
  ))


def data_config() -> ml_collections.ConfigDict:
  """Where pretraining text comes from and how it is prepared (amos_jax.data)."""
  return ml_collections.ConfigDict(dict(
      source="text",  # "text" (files/globs) or "tfds".
      text_files="",  # Comma-separated paths or globs (.gz read as gzip); empty: bundled sample.
      document_split="blank_line",  # "blank_line" or "line": what separates documents.
      max_line_bytes=1 << 20,  # Longer lines are skipped and counted, never read whole.
      tfds_name="",  # E.g. "wikipedia/20230601.en"; must already be prepared (no download).
      tfds_split="train",
      tfds_data_dir="",  # Empty: the TFDS default.
      tfds_text_key="text",
      prepared_dir="",  # Shards, tokenizer and metadata.json; empty means <workdir>/data.
      tokenizer_path="",  # An existing SentencePiece model; empty means train one.
      tokenizer_model_type="unigram",  # "unigram" or "bpe".
      # Lines SentencePiece samples (uniformly, from all text) to train on; training time
      # grows with it and dominates preparation of small corpora.
      tokenizer_train_lines=1_000_000,
      eval_fraction=0.01,  # Share of documents held out (by content hash) for evaluation.
      shard_mb=128.0,  # Largest prepared .npy shard.
      # Text per work unit, packed into rows on its own (amos_jax/data/work_units.py); a .gz
      # file is one unit whatever its size.
      unit_mb=64.0,
      # "local": prepare in this process; "beam": as an Apache Beam pipeline, whose options
      # (runner, workers) --beam_pipeline_options gives (docs/beam.md). Same directory.
      runner="local",
      # Tokenizer threads during preparation; 0: all cores (one per Beam worker).
      num_threads=0,
      # Batches read ahead by tf.data; shuffling is index-based (see amos_jax.data.pipeline).
      prefetch_batches=4,
  ))


def get_base_config(size: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_train_steps = 1_000_000
  config.batch_size = 256  # Global, across all devices and hosts.
  config.seq_len = 512
  config.log_every_steps = 100
  config.eval_every_steps = 10_000
  config.checkpoint_every_steps = 10_000
  config.keep_checkpoints = 3
  config.eval_batches = 50  # Batches per evaluation; 0 means the whole held-out split.
  # Micro-batches per step: the global batch is split and the gradients summed. 0 chooses:
  # one on accelerators, micro-batches of about 512 tokens per device on CPU, where XLA
  # runs the step much faster that way (train/step.py, CPU_MICRO_BATCH_TOKENS).
  config.gradient_accumulation_steps = 0
  # Split the optimizer's moments (2 fp32 copies of the parameters) over the devices instead
  # of replicating them (ZeRO stage 1): on 8 devices each holds 1 + 2/8 of the parameters'
  # size instead of 3, for the same traffic (train/step.py).
  config.shard_optimizer_state = False
  # Updates with non-finite gradients are skipped; this many in a row stops the run.
  config.max_consecutive_nonfinite_steps = 20
  # For MFU: the accelerator's matmul FLOP/s per device; 0 measures it at start.
  config.peak_flops_per_device = 0.0
  # An encoder to continue pretraining from (any checkpoint amos_jax reads: an export, the
  # AMOS authors' or BERT/ELECTRA; train/warm_start.py); empty: a fresh model.
  config.init_checkpoint = ""
  config.model = model_config(size)
  config.objective = objective_config()
  config.optimizer = optimizer_config()
  config.data = data_config()
  return config


def apply_preset(config: ml_collections.ConfigDict, preset: str | None):
  """Applies an objective preset: "amos" (default), "electra", "uniform", "no_reversal",
  "detached_mixture" (the reversed gradient stops at the mixture's features)."""
  preset = preset or "amos"
  if preset == "amos":
    pass
  elif preset == "electra":
    # One generator of the shallowest depth, no mixture, no adversarial gradient.
    config.model.generator.mlm_layers = [min(config.model.generator.mlm_layers)]
    config.objective.disc_grad_mul = 0.0
  elif preset == "uniform":
    config.objective.mixture = "uniform"
  elif preset == "no_reversal":
    config.objective.disc_grad_mul = 0.0
  elif preset == "detached_mixture":
    config.objective.detach_mixture_features = True
  else:
    raise ValueError(f"Unknown preset {preset!r}: expected one of amos, electra, uniform, "
                     "no_reversal, detached_mixture.")
  return config
