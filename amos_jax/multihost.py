"""The multi-host flags that every command which trains shares, and JAX's start from them.

On TPU VMs and SLURM `jax.distributed.initialize()` finds its peers by itself (--distributed);
elsewhere pass --coordinator_address, --num_processes and --process_id, as
launch/local_multiprocess.sh does for processes on one machine.
"""

from absl import flags, logging
import jax

flags.DEFINE_bool("distributed", False,
                  "Call jax.distributed.initialize() (auto-detected on TPU VMs and SLURM).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for multi-host.")
flags.DEFINE_integer("num_processes", None, "Number of processes, for multi-host.")
flags.DEFINE_integer("process_id", None, "This process's index, for multi-host.")
FLAGS = flags.FLAGS


def initialize():
  """Joins the other processes when the flags ask for it; must run before any computation."""
  if FLAGS.coordinator_address or FLAGS.distributed:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id)
  logging.info("JAX process %d/%d, %d local / %d global devices.", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
