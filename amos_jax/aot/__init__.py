"""Ahead-of-time compilation of amos_jax's steps for accelerators this host does not have."""
