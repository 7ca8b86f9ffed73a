"""amos_jax: pretraining text encoders with AMOS (Meng et al., ICLR 2022) in JAX/Flax."""
