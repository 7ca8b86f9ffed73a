"""TF runs the input side only: it must never take an accelerator from JAX."""

import tensorflow as tf


def hide_gpus_from_tf():
  """Makes GPUs invisible to TF; call before TF first runs an op."""
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:
    pass  # TF already initialized its devices; whoever did so first ran this.
