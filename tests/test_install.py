"""The product installs and runs anywhere: the wheel, installed into a fresh virtualenv, works on its own.

The wheel is built (with pip, as `pipx install .` builds it) from a copy of the
checkout, installed not editable into a new virtualenv without the system's
site-packages, and run from a directory outside the checkout, with its
configuration in a third directory: the templates come from the wheel, and
the data is kept beside the configuration file.

This takes about a minute (the dependencies come from PyPI or pip's cache).
"""
from __future__ import annotations

import email
import json
import mailbox
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from email import policy
from pathlib import Path

import pytest

from conftest import DATA, REPO

BUILD_SECONDS = 300
INSTALL_SECONDS = 600
RUN_SECONDS = 120
PACKAGES = ("intake", "parsers", "routing")
# Python's own warning lines (SetuptoolsDeprecationWarning, BuildBackendWarning, ...).
WARNING = re.compile(r"\b\w*Warning\b: ")


def _clean_environment() -> dict[str, str]:
    """The environment of a user's shell: nothing that points back into the checkout or its virtualenv."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "INTAKE_CONFIG", "VIRTUAL_ENV", "PYTHONHOME")}
    environment["PATH"] = os.pathsep.join(p for p in environment.get("PATH", "").split(os.pathsep)
                                          if not p.startswith(str(REPO)))
    return environment


def _run(command: list[str | Path], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=_clean_environment(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def _source_copy(target: Path) -> Path:
    """The checkout as it is (committed or not), without what a build or a run leaves, to build in peace."""
    ignored = shutil.ignore_patterns(".git", ".venv", "venv", "var", "build", "dist", "*.egg-info", "__pycache__",
                                     "*.pyc", ".pytest_cache", ".ruff_cache", ".mypy_cache")
    shutil.copytree(REPO, target, symlinks=True, ignore=ignored)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel, and everything its build printed (verbose: setuptools' own warnings included)."""
    root = tmp_path_factory.mktemp("build")
    source = _source_copy(root / "source")
    built = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--wheel-dir", root / "dist", source],
                 cwd=root, timeout=BUILD_SECONDS)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list((root / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], built.stdout + built.stderr


@pytest.fixture(scope="module")
def installed(wheel: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A fresh virtualenv with the wheel installed (not editable); its bin/ and pip's output."""
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    ran = _run([bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check", wheel[0]],
               cwd=root, timeout=INSTALL_SECONDS)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return bin_dir, ran.stdout + ran.stderr


def test_building_the_wheel_prints_no_warnings(wheel: tuple[Path, str]) -> None:
    warnings = [line.strip() for line in wheel[1].splitlines() if WARNING.search(line)]
    assert warnings == []


def test_the_wheel_is_named_and_licensed_for_pypi_and_holds_every_module_and_template(
        wheel: tuple[Path, str]) -> None:
    path, _ = wheel
    assert path.name.startswith("intake_support-")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "Name: intake-support" in metadata.splitlines()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "intake = intake.cli:main" in entry_points
    # every module of the checkout's packages (setuptools' discovery finds new ones by itself) ...
    modules = {p.relative_to(REPO).as_posix() for package in PACKAGES for p in (REPO / package).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set()
    # ... and every built-in template, at intake/templates/email/
    templates = {f"intake/templates/email/{p.name}" for p in (REPO / "templates" / "email").iterdir()}
    assert len(templates) >= 6 and templates - names == set()


def test_installed_wheel_runs_from_anywhere_with_the_config_in_a_third_folder(
        installed: tuple[Path, str], tmp_path: Path) -> None:
    bin_dir, pip_output = installed
    assert [line for line in pip_output.splitlines() if WARNING.search(line)] == []
    elsewhere = tmp_path / "elsewhere"   # where the user stands
    elsewhere.mkdir()
    conf = tmp_path / "conf"             # where the configuration is: the shipped file, as is
    conf.mkdir()
    config = conf / "config.toml"
    shutil.copyfile(REPO / "config.toml", config)

    where = _run([bin_dir / "python", "-c", "import intake, intake.mailout.templates as t; print(intake.__file__)"],
                 cwd=elsewhere, timeout=RUN_SECONDS)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(bin_dir.parent)  # the installed copy, not the checkout

    def intake(*args: str | Path) -> subprocess.CompletedProcess[str]:
        ran = _run([bin_dir / "intake", "--config", config, *args], cwd=elsewhere, timeout=RUN_SECONDS)
        assert ran.returncode == 0, f"intake {' '.join(map(str, args))}: {ran.stdout}{ran.stderr}"
        return ran

    intake("contacts", "import", DATA / "contacts.csv")
    ingested = intake("ingest", DATA / "seed_case_example.eml")
    assert "case_created" in ingested.stdout, ingested.stdout

    cases = json.loads(intake("cases", "--json").stdout)
    assert [(c["number"], c["subject"]) for c in cases] == [(1, "Teachers unable to post grades")]

    # the acknowledgement, rendered from the wheel's templates, in the Maildir under data_dir (var/ beside the file)
    box = mailbox.Maildir(str(conf / "var" / "outgoing"), factory=None, create=False)
    replies = [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()]
    assert [str(m["Subject"]) for m in replies] == ["[Case #1] Teachers unable to post grades"]
    text = replies[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert "We have created case #1 for it:\n\n    Teachers unable to post grades\n" in text
    assert "What we understood" in text
    assert replies[0].get_body(preferencelist=("html",)) is not None  # type: ignore[attr-defined]
    assert (conf / "var" / "intake.db").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing made where the user stands
