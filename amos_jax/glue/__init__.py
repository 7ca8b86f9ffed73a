"""GLUE fine-tuning data and metrics: task specs, TSV/TFDS loading, features, scoring."""
