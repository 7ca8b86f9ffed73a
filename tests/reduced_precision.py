"""Accelerator matmul precision emulated on CPU, where f32 matmuls are always exact.

With JAX's default precision a TPU multiplies float32 operands in bfloat16 (one pass) and a
GPU in TF32, while element-wise work and lookups stay exact. `with_bf16_matmuls(fn)` runs
`fn` with exactly that difference: it traces `fn` to a jaxpr and evaluates it, rounding the
float32 operands of every dot_general to bfloat16 (TF32 keeps 3 more mantissa bits; bf16
shows the same kind of error, larger).
"""

import jax
import jax.extend as jex
import jax.numpy as jnp

# Higher-order primitives whose body is inlined (so the matmuls inside are rounded too), by
# the name of the parameter that holds the body.
_BODIES = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr"}


def _round_to_bf16(x):
  if getattr(x, "dtype", None) == jnp.float32:
    return x.astype(jnp.bfloat16).astype(jnp.float32)
  return x


def _contains_dot(jaxpr) -> bool:
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      return True
    if any(_contains_dot(sub) for sub in jex.core.subjaxprs(jaxpr) if sub is not jaxpr):
      return True
  return False


def _evaluate(jaxpr, consts, *args):
  env = {}
  read = lambda var: var.val if isinstance(var, jex.core.Literal) else env[var]
  for var, value in zip(jaxpr.constvars, consts):
    env[var] = value
  for var, value in zip(jaxpr.invars, args):
    env[var] = value
  for eqn in jaxpr.eqns:
    inputs = [read(var) for var in eqn.invars]
    name = eqn.primitive.name
    if name == "dot_general":
      outputs = [eqn.primitive.bind(*map(_round_to_bf16, inputs), **eqn.params)]
    elif name in _BODIES:
      body = eqn.params[_BODIES[name]]
      outputs = _evaluate(body.jaxpr, body.consts, *inputs)
    else:
      for sub in jex.core.jaxprs_in_params(eqn.params):
        if _contains_dot(sub):
          raise NotImplementedError(f"A matmul inside {name} would not be rounded.")
      outputs = eqn.primitive.bind(*inputs, **eqn.params)
      if not eqn.primitive.multiple_results:
        outputs = [outputs]
    for var, value in zip(eqn.outvars, outputs):
      env[var] = value
  return [read(var) for var in jaxpr.outvars]


def with_bf16_matmuls(fn):
  """fn, evaluated with every float32 matmul's operands rounded to bfloat16."""
  def wrapped(*args):
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    outputs = _evaluate(closed.jaxpr, closed.consts, *jax.tree_util.tree_leaves(args))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outputs)
  return wrapped
