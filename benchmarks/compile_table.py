"""The docs' ahead-of-time table: each preset's pretraining step compiled for TPUs and GPUs.

python benchmarks/compile_table.py --out=benchmarks/results/compile_table.json [--rows=0,2]

Compiles, from this host, each row's pretraining step at the paper's sequence length 512 in
bfloat16 (amos_jax/compile_check.py), for some rows also the search for the largest per-chip
batch without accumulation, and prints the Markdown table of docs/gpu_tpu.md. Every
finished row is written to --out at once and kept: a rerun (after a kill, or with more rows)
compiles only what is missing, so the whole table can run in the background for hours, in
several processes given different --rows.
"""

import fcntl
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from amos_jax.aot import check  # noqa: E402  (first: it keeps JAX on the CPU)
from absl import flags  # noqa: E402

from amos_jax import atomic_file  # noqa: E402
from amos_jax import cli_errors  # noqa: E402
from amos_jax.aot import report as report_lib  # noqa: E402
from amos_jax.evaluation_suite import table  # noqa: E402
from amos_jax.formats import json_files  # noqa: E402
from configs import base, large, small  # noqa: E402

PRESETS = {"small": small, "base": base, "large": large}
_CUDNN = {"model.attention_implementation": "cudnn", "model.attention_dropout_rate": 0.0}
# (preset, target, global batch or 0 for the preset's, config overrides, search the batch),
# most wanted first: base where users book it, the GPUs with cuDNN attention, large and its
# fixes, the other TPUs, the paper's base++ batch on pods, then the rest.
ROWS = (
    ("base", "v5e-8", 0, {}, True),
    ("base", "h100-8", 0, _CUDNN, True),
    ("large", "v5e-8", 256, {}, True),
    ("large", "v5e-8", 256, {"model.remat": True}, False),
    ("base", "v5p-8", 0, {}, True),
    ("base", "v6e-8", 0, {}, True),
    ("base", "v4-8", 0, {}, True),
    ("base", "h200-8", 0, _CUDNN, True),
    ("base", "v5e-64", 2048, {}, False),  # The paper's base++ batch.
    ("base", "v5p-32", 2048, {}, False),
    ("large", "v5e-8", 0, {}, True),
    ("small", "v5e-8", 0, {}, True),
    ("small", "h100-8", 0, _CUDNN, True),
    ("large", "v5p-8", 0, {}, True),
    ("large", "v6e-8", 0, {}, True),
    ("large", "h100-8", 0, _CUDNN, True),
    ("base", "h100-8", 0, {}, False),  # XLA's attention, against cuDNN's above.
    # The one GPU setting measured on a real H200 (docs/performance.md): the ceiling must lie
    # above the MFU it reached.
    ("base", "h200-1", 64, {}, False),
    ("small", "v4-8", 0, {}, True),
    ("small", "v5p-8", 0, {}, True),
    ("small", "v6e-8", 0, {}, True),
    ("large", "v4-8", 0, {}, True),
    ("large", "h200-8", 0, _CUDNN, True),
    ("small", "h200-8", 0, _CUDNN, True),
    # large's batch of 256 on a v5e-8 in 4 micro-batches fills the chips (16.01 GiB, row 2's
    # search); with the moments split over the 8 chips, what is left.
    ("large", "v5e-8", 256, {"gradient_accumulation_steps": 4, "shard_optimizer_state": True},
     False),
)
SEQ_LEN = 512

flags.DEFINE_string("out", "benchmarks/results/compile_table.json",
                    "JSON file of finished rows; kept and extended across runs.")
flags.DEFINE_list("rows", [], "Row numbers of ROWS to run (default: all), e.g. 0,2,4; "
                  "processes running other rows may share --out.")
flags.DEFINE_bool("first_only", False, "Compile only each row's configured batch; a later run "
                  "without this flag goes on with the rows' searches from there.")
FLAGS = flags.FLAGS


def row_key(preset, target, batch, overrides) -> str:
  extra = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
  return f"{preset}:{target}:{batch or 'preset'}" + (f":{extra}" if extra else "")


def row_config(preset, batch, overrides):
  config = PRESETS[preset].get_config()
  config.seq_len = SEQ_LEN
  config.model.dtype = "bfloat16"
  if batch:
    config.batch_size = batch
  config.update_from_flattened_dict(overrides)
  return config


def markdown(records: dict) -> str:
  """The docs' table: the configured batch's compile per row, and what the search found."""
  lines = ["| preset | target | batch x 512 (rows/chip) | per chip GiB / memory | fits | largest "
           "rows/chip without accumulation | the batch in micro-batches | FLOPs/token compiled "
           "/ train/flops.py | roofline MFU ceiling | compile s | compiled |", "|" + " --- |" * 11]
  for key, record in records.items():
    preset, target = key.split(":")[:2]
    notes = [note for flag, note in (("cudnn", "cuDNN attention"), ("remat=True", "remat"),
                                     ("shard_optimizer_state=True", "optimizer state split"))
             if flag in key]
    first = record["reports"][0]
    if first["micro_batches"] > 1:
      notes.append(f"{first['micro_batches']} micro-batches")
    largest, accumulated = "-", "-"
    if record["searched"]:
      tried = {r["global_batch"] // r["num_devices"]: r["fits"] for r in record["reports"]
               if r["micro_batches"] == 1}
      fitting = [rows for rows, fits in tried.items() if fits]
      largest = str(max(fitting)) if fitting else "none"
      if fitting and max(tried) == max(fitting):  # The search stopped at its cap (8x).
        largest = f">= {largest}"
      split = [r for r in record["reports"] if r["micro_batches"] > 1]
      if split:
        accumulated = f"{split[-1]['micro_batches']} ({'fits' if split[-1]['fits'] else 'no'})"
    tokens = first["global_batch"] * first["seq_len"] / first["num_devices"]
    flops = "-"
    if first["compiled_flops"]:
      flops = (f"{first['compiled_flops'] / tokens:.3g} / {first['model_flops'] / tokens:.3g} "
               f"({first['compiled_flops'] / first['model_flops']:.2f}x)")
    if first["argument_bytes"] is not None:
      total = f"{first['total_bytes'] / 2**30:.1f}"
    elif first["required_bytes"] is not None:  # Refused: the compiler's own figure.
      what = "temporaries" if "HLO temporaries" in first["compiler_message"] else "in all"
      total = f"{what} {first['required_bytes'] / 2**30:.1f}"
    else:
      total = "-"
    ceiling = "-" if first["mfu_ceiling"] is None else f"{first['mfu_ceiling']:.1%}"
    lines.append(
        f"| {preset} | {target}{' (' + ', '.join(notes) + ')' if notes else ''} "
        f"| {first['global_batch']} ({first['global_batch'] // first['num_devices']}) "
        f"| {total} / {first['hbm_bytes'] / 2**30:.1f} "
        f"| {'FITS' if first['fits'] else 'DOES NOT FIT'} | {largest} | {accumulated} "
        f"| {flops} | {ceiling} | {first['compile_seconds']:.0f} "
        f"| {record['date']}, {record['commit']} |")
  return "\n".join(lines)


def _save(record_key: str, record: dict) -> dict:
  """Adds one row to --out, under a lock: other processes may be adding theirs."""
  with open(FLAGS.out + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    records = json_files.read_dict(FLAGS.out) if os.path.exists(FLAGS.out) else {}
    records[record_key] = record
    atomic_file.write_json(FLAGS.out, records)
  return records


def main(_):
  records = json_files.read_dict(FLAGS.out) if os.path.exists(FLAGS.out) else {}
  wanted = [ROWS[int(i)] for i in FLAGS.rows] if FLAGS.rows else ROWS
  for preset, target, batch, overrides, search in wanted:
    key = row_key(preset, target, batch, overrides)
    done = records.get(key)
    if done and (done["searched"] or not search or FLAGS.first_only):
      continue
    # A row whose search was cut short keeps its first compile.
    first = report_lib.Report.from_record(done["reports"][0]) if done else None
    started = time.perf_counter()
    search_now = search and not FLAGS.first_only
    reports = check.run_check(row_config(preset, batch, overrides), target,
                              find_batch=search_now, first=first)
    record = {"reports": [r.as_record() for r in reports], "searched": search_now,
              "seconds": time.perf_counter() - started + (done or {}).get("seconds", 0.0),
              "date": time.strftime("%Y-%m-%d"),
              "commit": table.git_commit(ignore=(FLAGS.out,)) or "unknown"}
    records = _save(key, record)
    print(f"{key}: {len(reports)} compiles in {record['seconds']:.0f} s", flush=True)
  print(markdown(records))


if __name__ == "__main__":
  cli_errors.run(main)
