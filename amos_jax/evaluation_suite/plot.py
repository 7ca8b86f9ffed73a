"""results.png: every column's seeds as points beside their median, to see the spread that
a median hides (a seed that stalled at the majority class, a task whose range is wide)."""

import matplotlib

matplotlib.use("Agg")  # Files only, as amos_jax/plots.py: no display needed.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

PLOT_FILE = "results.png"


def write(path: str, record: dict) -> str:
  """Plots the columns of `record` (table.summarize) that have scores; returns `path`."""
  scored = [entry for entry in record["columns"] if entry["median"] is not None]
  fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(scored) + 1.5), 4.5))
  for x, entry in enumerate(scored):
    values = list(entry["per_seed"].values())
    ax.plot([x - 0.12] * len(values), values, "o", color="C0", alpha=0.6,
            label="a seed" if x == 0 else None)
    ax.plot([x + 0.12], [entry["median"]], "D", color="C1",
            label="median" if x == 0 else None)
  ax.set_xticks(range(len(scored)), [entry["label"] for entry in scored], rotation=30,
                ha="right")
  ax.set_xlim(-0.6, len(scored) - 0.4)  # One task's points stay off the frame.
  ax.set_ylabel("dev score (GLUE in %, SQuAD EM/F1)")
  average = record.get("average")
  title = f"{len(record['seeds'])} seed(s); GLUE AVG " + (
      f"{average:.1f}" if average is not None else "needs all 8 tasks")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
