"""Console scripts of the installed package (pyproject.toml [project.scripts])."""


def main():
  """`amos-jax`: the same as `python -m amos_jax.main`, huge pages first (host_memory.py)."""
  from amos_jax import host_memory
  host_memory.reexec_with_huge_pages()  # Before JAX is imported.
  from amos_jax import main as main_module
  main_module.run()
