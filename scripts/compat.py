"""Build (or reuse) one virtualenv per Airflow line from its pinned constraints and run the suites in it.

``make compat`` calls this once per line of the compatibility table (docs/compatibility.rst);
``make compat AIRFLOW_VERSION=3.0.6`` runs one line. For each line:

* the constraints file ``constraints/airflow-<version>-py<python>.txt`` names the Python it was made with
  (a ``pip freeze`` of a venv where the suites passed; Airflow's own constraints are not fetched);
* the venv lives in ``.venv-compat/<version>-py<python>/`` and is rebuilt only when the constraints file or
  ``pyproject.toml`` change (the stamp file's name is a hash of both);
* the suites run with that venv's Python through ``scripts/run_pytest.py`` (no tests collected fails).

Only the standard library is used: it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints"
DEFAULT_TESTS = ["tests/unit", "tests/emulator", "tests/integration", "tests/e2e/test_watcher_restart.py"]


def constraints_for(version: str) -> tuple[Path, str]:
    """The constraints file of ``version`` and the Python version it was made with."""
    found = sorted(CONSTRAINTS.glob(f"airflow-{version}-py*.txt"))
    if len(found) != 1:
        known = sorted(p.name for p in CONSTRAINTS.glob("airflow-*.txt"))
        raise SystemExit(
            f"compat: need exactly one constraints/airflow-{version}-py<X.Y>.txt, found {len(found)}; "
            f"known: {', '.join(known) or 'none'}"
        )
    python = found[0].stem.rsplit("-py", 1)[1]
    return found[0], python


def interpreter(python: str) -> str:
    """A working ``python<X.Y>``: ``$PYTHON<X_Y>`` (e.g. ``PYTHON3_10``), the PATH, or a pyenv install."""
    override = os.environ.get(f"PYTHON{python.replace('.', '_')}")
    candidates = [override] if override else []
    candidates.append(shutil.which(f"python{python}"))
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python}*/bin/python{python}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    raise SystemExit(f"compat: no working python{python} found (set PYTHON{python.replace('.', '_')}=/path)")


def ensure_venv(version: str, constraints: Path, python: str, root: Path) -> Path:
    venv = root / f"{version}-py{python}"
    key = hashlib.sha256(constraints.read_bytes() + (REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = venv / f".installed-{key}"
    bin_dir = venv / "bin"
    if stamp.exists():
        print(f"compat: reusing {venv} (Airflow {version}, Python {python})", flush=True)
        return bin_dir
    print(f"compat: building {venv} from {constraints.relative_to(REPO)}", flush=True)
    if not (bin_dir / "python").exists():
        subprocess.run([interpreter(python), "-m", "venv", str(venv)], check=True)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, "-c", str(constraints), f"apache-airflow=={version}", "-e", f"{REPO}[dev]"],
        check=True,
        cwd=REPO,
    )
    for old in venv.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return bin_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="-- PYTEST_ARGS: passed on")
    parser.add_argument("versions", nargs="+", help="Airflow versions (lines of the compatibility table)")
    parser.add_argument("--venvs", default=str(REPO / ".venv-compat"), help="where the venvs are kept")
    parser.add_argument("--tests", default=" ".join(DEFAULT_TESTS), help="pytest paths, space separated")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    extra = argv[split + 1 :]  # after --: more pytest arguments
    results: list[tuple[str, int]] = []
    for version in args.versions:
        constraints, python = constraints_for(version)
        bin_dir = ensure_venv(version, constraints, python, Path(args.venvs).resolve())
        print(f"compat: Airflow {version} on Python {python}: pytest {args.tests}", flush=True)
        code = subprocess.call(
            [str(bin_dir / "python"), "scripts/run_pytest.py", *args.tests.split(), "-q", *extra], cwd=REPO
        )
        results.append((f"Airflow {version} / Python {python}", code))
    for line, code in results:
        print(f"compat: {line}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    return 0 if all(code == 0 for _, code in results) else 1


if __name__ == "__main__":
    sys.exit(main())
