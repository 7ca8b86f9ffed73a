"""pyproject.toml: the package installs with its data and console scripts."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a build reads; copied so that the build leaves nothing in the checkout.
REQUIREMENTS = ("requirements.txt", "requirements-hf.txt", "requirements-gpu.txt",
                "requirements-beam.txt", "requirements-tpu.txt", "requirements-gpu-compile.txt")
SOURCES = ("pyproject.toml", "README.md", *REQUIREMENTS, "amos_jax", "configs")


def pins(path: str) -> dict[str, str]:
  """{name: exact version} of a pinned requirements file."""
  found = {}
  with open(path) as f:
    for line in f:
      line = line.split("#")[0].strip()
      if line:
        name, version = line.split("==")
        found[name.split("[")[0].lower()] = version
  return found


def test_requirements_are_exact_pins():
  for name in REQUIREMENTS:
    assert pins(os.path.join(REPO, name))  # Raises on a line that is not NAME==VERSION.
  jax_version = pins(os.path.join(REPO, "requirements.txt"))["jax"]
  assert pins(os.path.join(REPO, "requirements-gpu.txt"))["jax"] == jax_version
  # The compilers must be those of the pinned jax (libtpu: the release jax[tpu] pins).
  assert pins(os.path.join(REPO, "requirements-gpu-compile.txt"))["jax-cuda12-pjrt"] == jax_version


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
  """A fresh venv with amos_jax installed (no dependencies), seeing this environment's
  packages through a .pth file, so nothing is downloaded."""
  setuptools = pytest.importorskip("setuptools")
  if tuple(int(part) for part in setuptools.__version__.split(".")[:2]) < (70, 1):
    pytest.importorskip("wheel")  # Older setuptools build wheels with the wheel package.
  root = tmp_path_factory.mktemp("package")
  source = root / "source"
  source.mkdir()
  for name in SOURCES:
    path = os.path.join(REPO, name)
    if os.path.isdir(path):
      shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
      shutil.copyfile(path, source / name)
  env_dir = root / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
  python = str(env_dir / "bin" / "python")
  site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        check=True, capture_output=True, text=True).stdout.strip()
  with open(os.path.join(site, "outer.pth"), "w") as f:
    f.write(sysconfig.get_path("purelib") + "\n")
  install = subprocess.run(
      [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
       str(source)], capture_output=True, text=True, timeout=300, check=False)
  assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
  return env_dir, site


def run_in(env_dir, *args):
  """Runs a command of the venv outside the checkout, so only the installed copy is seen."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  return subprocess.run(args, capture_output=True, text=True, cwd=str(env_dir), env=env,
                        timeout=300, check=False)


def test_installs_the_packages_with_their_data(venv):
  env_dir, site = venv
  out = run_in(env_dir, str(env_dir / "bin" / "python"), "-c",
               "import amos_jax, configs.tiny; from amos_jax.data import sources; "
               "from amos_jax.formats import hf_export; from amos_jax.formats.hf import hf_config; "
               "from amos_jax.formats.hf import tokenizer_files; "
               "from amos_jax.aot import targets; "
               "import os; print(amos_jax.__file__); "
               "print(os.path.getsize(sources.SAMPLE_PATH)); "
               "print(all(os.path.isfile(os.path.join(os.path.dirname(hf_config.__file__), n)) "
               "for n in hf_export.CODE_FILES) and "
               "all(os.path.isfile(p) for p in tokenizer_files.AUTHORS_CODE.values())); "
               "print(sorted(os.listdir(os.path.join(os.path.dirname(targets.__file__), "
               "'gpu_specs'))))")
  assert out.returncode == 0, out.stderr[-2000:]
  module_path, sample_bytes, templates, gpu_specs = out.stdout.split(maxsplit=3)
  assert module_path.startswith(site)
  assert int(sample_bytes) > 100_000 and templates == "True"
  assert gpu_specs.strip() == "['h100.txtpb', 'h200.txtpb']"


def test_console_scripts_print_their_help(venv):
  env_dir, _ = venv
  for script, module, flag in (("amos-jax", "amos_jax.main", "--config"),
                               ("amos-jax-export", "amos_jax.export", "--format"),
                               ("amos-jax-compile-check", "amos_jax.compile_check",
                                "--topology")):
    # --helpfull: absl's --help lists only the flags of the script file itself (none here).
    out = run_in(env_dir, str(env_dir / "bin" / script), "--helpfull")
    assert out.returncode == 1, out.stderr[-2000:]  # absl exits 1 after printing help.
    assert f"{module}:" in out.stdout and f"  {flag}:" in out.stdout


def test_metadata_reads_its_dependencies_from_the_pinned_files():
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)
  dynamic = project["tool"]["setuptools"]["dynamic"]
  assert dynamic["dependencies"]["file"] == ["requirements.txt"]
  assert dynamic["optional-dependencies"]["hf"]["file"] == ["requirements-hf.txt"]
  assert dynamic["optional-dependencies"]["beam"]["file"] == ["requirements-beam.txt"]
  assert dynamic["optional-dependencies"]["tpu"]["file"] == ["requirements-tpu.txt"]
  assert dynamic["optional-dependencies"]["gpu-compile"]["file"] == [
      "requirements-gpu-compile.txt"]
  assert set(project["project"]["scripts"]) == {"amos-jax", "amos-jax-export",
                                                 "amos-jax-compile-check"}
