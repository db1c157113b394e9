"""The status page in a real headless Chromium: the banner's colour and words in each of its three states,
the Open and Closed tabs (plain links, no JavaScript), status.json and the Atom feed."""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Intake

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ORANGE, GREEN, GRAY = "rgba(242, 140, 40, 1)", "rgba(46, 125, 50, 1)", "rgba(95, 99, 104, 1)"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = "Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"required under CI=true: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    # JavaScript off: the page must work without it.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                     "--blink-settings=scriptEnabled=false"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _page(intake: Intake, site: Path) -> None:
    ran = intake.run("status-page", "--out", str(site), "--json")
    assert ran.code == 0, ran.err


def _banner(browser, page: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    browser.get(page.as_uri())
    banner = browser.find_element("id", "banner")
    return banner.text, banner.value_of_css_property("background-color")


def _titles(browser) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.text for e in browser.find_elements("css selector", "article.notice h3")]


def test_banner_in_each_state_and_the_open_and_closed_tabs(intake: Intake, tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    site = tmp_path / "site"
    _page(intake, site)
    assert _banner(browser, site / "index.html") == ("There are no current open notifications", GRAY)
    assert "There are no current open notifications." in browser.find_element("tag name", "main").text

    intake.run("notify", "maintenance", "Database upgrade", "--starts", "2030-01-05 22:00", "--ends",
               "2030-01-06 02:00", "--body", "The SIS is unavailable during the upgrade.")
    _page(intake, site)
    assert _banner(browser, site / "index.html") == ("Maintenance is scheduled: Database upgrade", GREEN)

    incident = intake.run("notify", "incident", "Digicert Incident", "--body", "Certificates are reissued.",
                          "--json").json()["id"]
    intake.run("notify", "update", str(incident), "--body", "All customer domains have been updated.")
    intake.run("notify", "incident", "Hidden draft", "--body", "Not yet.", "--draft")
    _page(intake, site)
    assert _banner(browser, site / "index.html") == ("An incident is in progress: Digicert Incident", ORANGE)
    assert _titles(browser) == ["Digicert Incident", "Database upgrade"]  # drafts never shown
    update = browser.find_element("css selector", f"#notice-{incident} .update").text
    assert update.endswith("UPDATE: All customer domains have been updated.")

    intake.run("notify", "resolve", str(incident), "--body", "Certificates replaced.")
    _page(intake, site)
    assert _banner(browser, site / "index.html")[1] == GREEN
    assert _titles(browser) == ["Database upgrade"]
    browser.find_element("id", "tab-closed").click()  # a plain link: works without JavaScript
    assert browser.current_url.endswith("closed.html")
    assert browser.find_element("id", "tab-closed").get_attribute("aria-current") == "page"
    assert _titles(browser) == ["Digicert Incident"]
    times = browser.find_element("css selector", f"#notice-{incident} .times").text
    assert times.endswith("Resolved") and " - " in times

    intake.run("notify", "cancel", "1", "--body", "Postponed.")
    _page(intake, site)
    assert _banner(browser, site / "index.html") == ("There are no current open notifications", GRAY)


def test_status_json_and_the_atom_feed(intake: Intake, tmp_path: Path) -> None:
    site = tmp_path / "site"
    incident = intake.run("notify", "incident", "Digicert <Incident>", "--body", "a & b", "--json").json()["id"]
    _page(intake, site)
    status = json.loads((site / "status.json").read_text(encoding="utf-8"))
    assert status["banner"]["state"] == "incident" and status["closed"] == []
    assert [(n["id"], n["title"], n["status"], n["open"]) for n in status["open"]] == [
        (incident, "Digicert <Incident>", "open", True)]
    feed = ElementTree.parse(site / "feed.atom").getroot()
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Incident: Digicert <Incident> (In Progress)"]
    assert "&lt;Incident&gt;" in (site / "index.html").read_text(encoding="utf-8")  # autoescaped
    again = intake.run("status-page", "--out", str(site), "--json").json()
    assert again["changed"] == []  # nothing changed: nothing written, nothing published
