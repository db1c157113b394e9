"""Reply templates are compiled once per process: later replies neither read nor look at the files again."""
from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, Environment, Template

from intake.mailout.templates import template_environment


def test_the_environment_is_made_once_and_each_template_compiled_once(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "acknowledgement.txt").write_text("Thank you, {{ to_name }}.\n")
    environment = template_environment(tmp_path)
    assert template_environment(tmp_path) is environment
    first: Template = environment.get_template("acknowledgement.txt")
    html = environment.get_template("acknowledgement.html")  # a built-in, inherited

    def no_more_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a template was read or checked again")

    assert isinstance(environment.loader, ChoiceLoader)
    for loader in environment.loader.loaders:
        monkeypatch.setattr(loader, "get_source", no_more_reading)
    (tmp_path / "acknowledgement.txt").write_text("Changed while running: used from the next start.\n")
    assert environment.get_template("acknowledgement.txt") is first
    assert environment.get_template("acknowledgement.html") is html
    assert first.render(to_name="Zack") == "Thank you, Zack."


def test_a_new_process_reads_the_changed_template(tmp_path: Path) -> None:
    (tmp_path / "refusal.txt").write_text("Version two.\n")
    fresh = Environment(loader=template_environment(tmp_path).loader)  # as the next start would
    assert fresh.get_template("refusal.txt").render() == "Version two."
