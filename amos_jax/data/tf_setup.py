"""TF runs the input side only: it must never take an accelerator from JAX."""


def hide_gpus_from_tf():
  """Makes GPUs invisible to TF; call before TF first runs an op. Without TF installed
  (data/pipeline.py then gathers batches in threads) there is nothing to hide."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:
    pass  # TF already initialized its devices; whoever did so first ran this.
