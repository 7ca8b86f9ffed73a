"""benchmarks/profile_table.py sums op times into category rows without double counting."""

from benchmarks import profile_table
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
