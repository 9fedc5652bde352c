"""The issue's "done when", in a real browser: Chromium from the system's packages, driven by
Selenium, against a real Mosquitto, a real PostgreSQL, the station and a simulated site as real
processes. An alarm at the site appears in the open queue page by itself (Server-Sent Events),
an operator acknowledges it, writes a note and closes it, the note survives a station restart,
and a wrong password is refused."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e import Site
from tests.mqtt_broker import Broker, wait_for
from tests.station.proc import StationProc, og_station
from tests.station.test_e2e_station import WEDNESDAY_NOON, site_config

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PW = "a long operator password"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture
def chrome() -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium is needed: run `sudo apt-get install chromium chromium-driver`")
    profile = tempfile.mkdtemp(prefix="og-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(f)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def login(driver: webdriver.Chrome, base: str, user: str, password: str) -> None:
    driver.get(base + "/login")
    driver.find_element(By.ID, "login").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()


def test_an_operator_works_an_alarm_in_chromium_and_the_note_survives_a_restart(
    tmp_path: Path, broker: Broker, pg_url: str, chrome: webdriver.Chrome
) -> None:
    assert og_station("operator", "lan", "--db", pg_url, input=PW + "\n").returncode == 0
    station = StationProc(tmp_path, pg_url, broker.url)
    station.start()
    site = Site(tmp_path / "site", config=site_config(tmp_path, broker.url))
    site.start(WEDNESDAY_NOON)
    # a click that posts a form loads a new page: a node looked at meanwhile can vanish under
    # chromedriver ("does not belong to the document"); the wait looks again
    wait = WebDriverWait(
        chrome, 20, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
    )
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=15)
        login(chrome, station.url, "lan", "wrong password, surely")
        assert (
            "Sai tên đăng nhập hoặc mật khẩu"  # Vietnamese by default
            in wait.until(ec.presence_of_element_located((By.ID, "error"))).text
        )
        login(chrome, station.url, "lan", PW)
        wait.until(ec.presence_of_element_located((By.ID, "count")))
        assert chrome.find_elements(By.CSS_SELECTOR, "tr.incident") == []

        site.og("sim", "set", "tamper.cabinet", "active")
        row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.incident")))
        assert "office-a" in chrome.page_source  # arrived in the open page, no reload
        row.find_element(By.TAG_NAME, "a").click()
        wait.until(ec.element_to_be_clickable((By.ID, "ack"))).click()
        wait.until(
            ec.text_to_be_present_in_element_attribute(
                (By.ID, "state"), "data-state", "acknowledged"
            )
        )
        chrome.find_element(By.ID, "note-text").send_keys("Nắp tủ mở khi bảo trì; đã gọi kỹ thuật")
        chrome.find_element(By.ID, "note").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "trail"), "Nắp tủ mở khi bảo trì"))
        incident_url = chrome.current_url
        Select(chrome.find_element(By.ID, "resolution")).select_by_value("technical_fault")
        chrome.find_element(By.ID, "close").click()
        wait.until(ec.presence_of_element_located((By.ID, "count")))
        assert chrome.find_elements(By.CSS_SELECTOR, "tr.incident") == []

        assert station.stop() == 0
        station.start()
        chrome.delete_all_cookies()
        login(chrome, station.url, "lan", PW)
        wait.until(ec.presence_of_element_located((By.ID, "count")))
        chrome.get(incident_url)
        trail = wait.until(ec.presence_of_element_located((By.ID, "trail"))).text
        assert "Nắp tủ mở khi bảo trì" in trail and "đã đóng" in trail
        assert chrome.find_element(By.ID, "state").get_attribute("data-state") == "closed"
    finally:
        site.stop()
        station.stop()
