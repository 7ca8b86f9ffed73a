"""GLUE metrics against scipy and hand-computed confusion matrices."""

import numpy as np
import pytest
from scipy import stats

from amos_jax.glue import metrics
from amos_jax.glue import tasks

# A worked binary example: TP=3, TN=2, FP=1, FN=2 (n=8).
PREDICTIONS = np.array([1, 1, 1, 1, 0, 0, 0, 0])
LABELS = np.array([1, 1, 1, 0, 1, 1, 0, 0])


def test_accuracy_worked_example():
  assert metrics.accuracy(PREDICTIONS, LABELS) == pytest.approx(5 / 8)


def test_f1_worked_example():
  # precision 3/4, recall 3/5 -> F1 = 2 * 0.75 * 0.6 / 1.35 = 2/3.
  assert metrics.f1(PREDICTIONS, LABELS) == pytest.approx(2 / 3)


def test_f1_counts_class_one_as_positive():
  # Swapping the class ids changes F1: it is not symmetric in the classes.
  # TP'=2 (old TN), FP'=2 (old FN), FN'=1 (old FP) -> 4 / (4 + 2 + 1).
  assert metrics.f1(1 - PREDICTIONS, 1 - LABELS) == pytest.approx(4 / 7)


def test_f1_without_any_positive_is_zero():
  assert metrics.f1([0, 0, 0], [0, 0, 0]) == 0.0
  assert metrics.f1([0, 0, 0], [1, 0, 0]) == 0.0


def test_matthews_worked_example():
  tp, tn, fp, fn = 3, 2, 1, 2
  expected = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  assert expected == pytest.approx(4 / np.sqrt(240))
  assert metrics.matthews_corr(PREDICTIONS, LABELS) == pytest.approx(expected)


def test_matthews_perfect_and_inverted():
  assert metrics.matthews_corr(LABELS, LABELS) == pytest.approx(1.0)
  assert metrics.matthews_corr(1 - LABELS, LABELS) == pytest.approx(-1.0)


def test_matthews_multiclass_matches_gorodkin_definition():
  # R_K = cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)) for one-hot matrices X, Y, where cov sums
  # the per-class (per-column) covariances.
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, size=50)
  predictions = np.where(rng.random(50) < 0.6, labels, rng.integers(0, 3, size=50))
  x, y = np.eye(3)[predictions], np.eye(3)[labels]

  def cov(a, b):
    return sum(np.cov(a[:, k], b[:, k])[0, 1] for k in range(3))

  expected = cov(x, y) / np.sqrt(cov(x, x) * cov(y, y))
  assert 0.3 < expected < 0.9
  assert metrics.matthews_corr(predictions, labels) == pytest.approx(expected)


@pytest.mark.parametrize("predictions, labels", [
    ([1, 1, 1, 1], [0, 1, 0, 1]),  # constant predictions
    ([0, 1, 0, 1], [1, 1, 1, 1]),  # constant labels
])
def test_matthews_degenerate_is_zero_not_nan(predictions, labels):
  assert metrics.matthews_corr(predictions, labels) == 0.0


def test_pearson_matches_scipy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=40)
  y = 0.5 * x + rng.normal(size=40)
  assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])


def test_pearson_degenerate_is_zero_not_nan():
  assert metrics.pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
  assert metrics.pearson([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == 0.0


def test_average_ranks_on_ties():
  np.testing.assert_array_equal(
      metrics.average_ranks([10, 20, 10, 30, 20, 10]), [2, 4.5, 2, 6, 4.5, 2])
  np.testing.assert_array_equal(
      metrics.average_ranks([3.0, 1.0, 2.0]), stats.rankdata([3.0, 1.0, 2.0]))


def test_spearman_with_ties_matches_scipy():
  # STS-B scores are on a coarse grid, so ties are the normal case.
  rng = np.random.default_rng(2)
  labels = rng.integers(0, 6, size=60).astype(np.float32)
  predictions = np.round(labels + rng.normal(scale=1.5, size=60))
  expected = stats.spearmanr(predictions, labels)[0]
  assert metrics.spearman(predictions, labels) == pytest.approx(expected)
  # Without average ranks, the answer would differ.
  ordinal = stats.pearsonr(stats.rankdata(predictions, method="ordinal"),
                           stats.rankdata(labels, method="ordinal"))[0]
  assert abs(expected - ordinal) > 1e-3


def test_spearman_is_rank_based():
  x = np.array([1.0, 2.0, 3.0, 4.0])
  assert metrics.spearman(x, np.exp(x)) == pytest.approx(1.0)
  assert metrics.pearson(x, np.exp(x)) < 0.99


def test_spearman_degenerate_is_zero_not_nan():
  assert metrics.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0


def test_shape_mismatch_and_empty_are_errors():
  with pytest.raises(ValueError, match="same shape"):
    metrics.accuracy([0, 1], [0, 1, 1])
  with pytest.raises(ValueError, match="empty"):
    metrics.accuracy([], [])


def test_compute_uses_task_metrics():
  result = metrics.compute("mrpc", PREDICTIONS, LABELS)
  assert list(result) == [tasks.F1, tasks.ACCURACY]
  assert result == pytest.approx({"f1": 2 / 3, "accuracy": 5 / 8})
  assert metrics.compute("cola", PREDICTIONS, LABELS) == pytest.approx(
      {"matthews_corr": 4 / np.sqrt(240)})


def test_compute_takes_argmax_of_scores():
  scores = np.array([[0.1, 0.7, 0.2], [2.0, -1.0, 0.0], [0.0, 0.0, 3.0]])
  assert metrics.compute("mnli", scores, [1, 0, 1]) == pytest.approx({"accuracy": 2 / 3})
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
    metrics.compute("sst2", scores, [1, 0, 1])


def test_compute_regression_accepts_column_of_scores():
  predictions = np.array([[0.5], [2.0], [1.0], [4.5]])
  labels = np.array([1.0, 2.5, 0.0, 5.0])
  result = metrics.compute(tasks.get_task("STS-B"), predictions, labels)
  assert result["pearson"] == pytest.approx(stats.pearsonr(predictions[:, 0], labels)[0])
  # Ranks (1, 3, 2, 4) vs (2, 3, 1, 4): 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 12 / 60.
  assert result["spearman"] == pytest.approx(0.8)
