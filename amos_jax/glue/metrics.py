"""GLUE metrics in numpy, as the GLUE benchmark defines them.

Degenerate inputs return 0.0 rather than NaN: a constant prediction (or constant labels)
makes Matthews, Pearson and Spearman correlations 0/0. GLUE's reference scorer (sklearn)
returns 0.0 for Matthews in that case, and we do the same for Pearson and Spearman, so a
collapsed model scores "no correlation" and model selection never compares against NaN.
F1 with no positive predictions and no positive labels is likewise 0.0.
"""

import numpy as np

from amos_jax.glue import tasks


def _check_same_length(predictions, labels):
  predictions, labels = np.asarray(predictions), np.asarray(labels)
  if predictions.shape != labels.shape or predictions.ndim != 1:
    raise ValueError(
        f"Expected predictions and labels of the same shape [N]; got {predictions.shape} "
        f"and {labels.shape}.")
  if predictions.size == 0:
    raise ValueError("Cannot score an empty set of predictions.")
  return predictions, labels


def accuracy(predictions, labels) -> float:
  """Fraction of predictions equal to their label."""
  predictions, labels = _check_same_length(predictions, labels)
  return float(np.mean(predictions == labels))


def f1(predictions, labels) -> float:
  """Binary F1 of the positive class (id 1): 2 TP / (2 TP + FP + FN)."""
  predictions, labels = _check_same_length(predictions, labels)
  predicted, actual = predictions == 1, labels == 1
  true_pos = np.sum(predicted & actual)
  denominator = np.sum(predicted) + np.sum(actual)  # = 2 TP + FP + FN
  return float(2 * true_pos / denominator) if denominator else 0.0


def matthews_corr(predictions, labels) -> float:
  """Matthews correlation coefficient, multi-class form (Gorodkin 2004); 0.0 if undefined.

  From the confusion matrix C with n samples, c correct, t_k true and p_k predicted counts
  of class k: (c n - sum p_k t_k) / sqrt((n^2 - sum p_k^2) (n^2 - sum t_k^2)). For two
  classes this is (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
  """
  predictions, labels = _check_same_length(predictions, labels)
  classes = np.union1d(predictions, labels)
  predicted_counts = np.sum(predictions[:, None] == classes[None, :], axis=0).astype(np.float64)
  true_counts = np.sum(labels[:, None] == classes[None, :], axis=0).astype(np.float64)
  n = float(predictions.size)
  correct = float(np.sum(predictions == labels))
  covariance = correct * n - predicted_counts @ true_counts
  variance_pred = n * n - predicted_counts @ predicted_counts
  variance_true = n * n - true_counts @ true_counts
  if variance_pred == 0 or variance_true == 0:
    return 0.0
  return float(covariance / np.sqrt(variance_pred * variance_true))


def pearson(predictions, labels) -> float:
  """Pearson correlation; 0.0 if either side is constant."""
  predictions, labels = _check_same_length(predictions, labels)
  x = predictions.astype(np.float64) - np.mean(predictions, dtype=np.float64)
  y = labels.astype(np.float64) - np.mean(labels, dtype=np.float64)
  denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
  if denominator == 0:
    return 0.0
  # Rounding can push |r| a hair above 1 for perfectly (anti)correlated inputs.
  return float(np.clip(np.sum(x * y) / denominator, -1.0, 1.0))


def average_ranks(values) -> np.ndarray:
  """1-based ranks; tied values all get the mean of the ranks they span."""
  values = np.asarray(values)
  order = np.argsort(values, kind="stable")
  sorted_values = values[order]
  # Start index of each run of equal values in sorted order.
  run_starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
  run_ends = np.r_[run_starts[1:], values.size]
  # A run covering sorted positions [s, e) holds ranks s+1..e, whose mean is (s + 1 + e) / 2.
  run_ranks = (run_starts + 1 + run_ends) / 2.0
  ranks = np.empty(values.size, dtype=np.float64)
  ranks[order] = np.repeat(run_ranks, run_ends - run_starts)
  return ranks


def spearman(predictions, labels) -> float:
  """Spearman rank correlation: Pearson of the average ranks; 0.0 if either side is constant."""
  predictions, labels = _check_same_length(predictions, labels)
  return pearson(average_ranks(predictions), average_ranks(labels))


_METRIC_FNS = {
    tasks.ACCURACY: accuracy,
    tasks.F1: f1,
    tasks.MATTHEWS_CORR: matthews_corr,
    tasks.PEARSON: pearson,
    tasks.SPEARMAN: spearman,
}


def compute(task: tasks.TaskSpec | str, predictions, labels) -> dict[str, float]:
  """Scores one split with every metric of the task.

  Args:
    task: a TaskSpec or a task name.
    predictions: classification: class ids [N], or scores [N, num_labels] (argmax is taken);
      regression: values [N] or [N, 1].
    labels: [N] class ids, or target values for regression.

  Returns:
    {metric name: value} in the order of `task.metrics`.
  """
  if isinstance(task, str):
    task = tasks.get_task(task)
  predictions = np.asarray(predictions)
  if task.is_regression:
    if predictions.ndim == 2 and predictions.shape[1] == 1:
      predictions = predictions[:, 0]
  elif predictions.ndim == 2:
    if predictions.shape[1] != task.num_labels:
      raise ValueError(
          f"{task.name}: expected scores of shape [N, {task.num_labels}], got "
          f"{predictions.shape}.")
    predictions = np.argmax(predictions, axis=-1)
  return {name: _METRIC_FNS[name](predictions, labels) for name in task.metrics}
