"""benchmarks/profile_table.py reads per-op times from CPU and GPU traces, sums them into rows."""

import jax

from benchmarks import profile_table
from configs import base, small
from tests.test_hlo_categories import MODULE, VOCAB


def test_rows_sum_op_times_skip_containers_and_keep_unknown_ops_as_other():
  times = {"gemm_fusion": 600, "cublas-gemm.1": 100, "norm_fusion": 200, "while.1": 10_000,
           "not_in_module.7": 100}
  rows, ops, unmatched = profile_table.summarise(times, MODULE, VOCAB, False)
  assert rows["matmul"] == (600, 600)
  assert rows["attention"] == (100, 100)
  assert rows["elementwise"] == (200, 0)
  assert rows["other"] == (100, 0) and unmatched == 100
  assert [name for _, name, _ in ops] == ["gemm_fusion", "norm_fusion", "cublas-gemm.1"]
  table = profile_table.format_table(rows, per_step_divisor=1, step_ns=2000)
  assert table.splitlines()[1].split() == ["matmul", "0.001", "60.0%", "30.0%", "0.001"]
  assert table.splitlines()[-1].split()[2:4] == ["100.0%", "50.0%"]


def xspace(planes):
  return jax.profiler.ProfileData.from_text_proto(planes)


# An "XLA Ops" line per device beside a stream line that repeats the same kernels; an op of
# another module (the hlo_module stat) must not count.
GPU_TRACE = """
planes {
  id: 1 name: "/device:GPU:0"
  lines { id: 1 name: "XLA Ops"
    events { metadata_id: 1 duration_ps: 5000000 }
    events { metadata_id: 2 duration_ps: 1000000 }
    events { metadata_id: 3 duration_ps: 7000000 stats { metadata_id: 9 str_value: "jit_init" } } }
  lines { id: 2 name: "Stream #7" events { metadata_id: 1 duration_ps: 5000000 } }
  event_metadata { key: 1 value { id: 1 name: "fusion.1" } }
  event_metadata { key: 2 value { id: 2 name: "copy.3" } }
  event_metadata { key: 3 value { id: 3 name: "fusion.2" } }
  stat_metadata { key: 9 value { id: 9 name: "hlo_module" } }
}
planes { id: 2 name: "/host:CPU" }
"""

# XLA:CPU: ops on the host's worker threads, named by the hlo_op stat, among runtime events.
CPU_TRACE = """
planes {
  id: 1 name: "/host:CPU"
  lines { id: 1 name: "tf_XLAEigen/1"
    events { metadata_id: 1 duration_ps: 9000000 }
    events { metadata_id: 2 duration_ps: 4000000
             stats { metadata_id: 8 str_value: "copy.3" }
             stats { metadata_id: 9 str_value: "jit_train_step" } } }
  event_metadata { key: 1 value { id: 1 name: "ThunkExecutor::Execute" } }
  event_metadata { key: 2 value { id: 2 name: "copy.3" } }
  stat_metadata { key: 8 value { id: 8 name: "hlo_op" } }
  stat_metadata { key: 9 value { id: 9 name: "hlo_module" } }
}
"""


def test_gpu_op_times_come_from_the_xla_ops_line_of_this_module_only():
  times, source, devices = profile_table.op_times_ns(xspace(GPU_TRACE), "jit_train_step", "gpu")
  assert dict(times) == {"fusion.1": 5000, "copy.3": 1000}
  assert devices == 1 and "XLA Ops" in source


def test_cpu_op_times_are_the_host_events_that_name_an_hlo_op():
  times, source, _ = profile_table.op_times_ns(xspace(CPU_TRACE), "jit_train_step", "cpu")
  assert dict(times) == {"copy.3": 4000}
  assert "XLA:CPU" in source


def test_base_at_64_x_512_tokens_makes_the_vocabulary_size_ambiguous():
  config = base.get_config()
  config.batch_size, config.seq_len = 64, 512  # 32768 tokens, 32768 words.
  assert profile_table.vocab_size_is_ambiguous(config, device_count=1, micro_batches=1)
  # Split over 8 devices the rows no longer multiply to the vocabulary size.
  assert not profile_table.vocab_size_is_ambiguous(config, device_count=8, micro_batches=1)
  config = small.get_config()
  config.batch_size, config.seq_len = 512, 128
  assert not profile_table.vocab_size_is_ambiguous(config, device_count=1, micro_batches=1)
