"""The issue's "done when", in a real browser: Chromium from the system's packages, driven by
Selenium, against a real Mosquitto, a real PostgreSQL, the station and a simulated site as real
processes. An alarm at the site appears in the open queue page by itself (Server-Sent Events),
an operator acknowledges it, writes a note and closes it, the note survives a station restart,
and a wrong password is refused. And the priority-1 sound: blocked by the autoplay rules until
a gesture, the "sound is off" bar shows; a click on it starts the sound and the bar goes; with
the kiosk's autoplay flag the bar never shows. And the site board and the review fit a phone's
width and grow on the big screen."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
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

from controller.station import auth
from controller.station.ingest import Ingest
from controller.station.store import Store
from controller.station.web import Station
from tests.e2e import Site
from tests.mqtt_broker import Broker, wait_for
from tests.station.proc import StationProc, og_station
from tests.station.test_e2e_station import WEDNESDAY_NOON, site_config
from tests.station.webclient import Server

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


def login(
    driver: webdriver.Chrome, base: str, user: str, password: str, *, refused: bool = False
) -> None:
    """Log in through the form and wait for the queue it leads to (unless `refused`): a page
    loaded before that would start from the clicked login page, whose permission to play
    sound it inherits, and a node looked at meanwhile can vanish under chromedriver."""
    driver.get(base + "/login")
    driver.find_element(By.ID, "login").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    if not refused:
        WebDriverWait(
            driver, 20, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
        ).until(ec.presence_of_element_located((By.ID, "count")))


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
        login(chrome, station.url, "lan", "wrong password, surely", refused=True)
        assert (
            "Sai tên đăng nhập hoặc mật khẩu"  # Vietnamese by default
            in wait.until(ec.presence_of_element_located((By.ID, "error"))).text
        )
        login(chrome, station.url, "lan", PW)
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
        chrome.get(incident_url)
        trail = wait.until(ec.presence_of_element_located((By.ID, "trail"))).text
        assert "Nắp tủ mở khi bảo trì" in trail and "đã đóng" in trail
        assert chrome.find_element(By.ID, "state").get_attribute("data-state") == "closed"
    finally:
        site.stop()
        station.stop()




def chromium(profile: Path, *flags: str) -> webdriver.Chrome:
    """Chromium with the browser test's flags and these, in a fresh profile."""
    if not shutil.which(CHROMIUM) or not shutil.which(CHROMEDRIVER):
        pytest.fail("Chromium is needed: run `sh scripts/need-chromium.sh`")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in (*FLAGS, *flags, f"--user-data-dir={profile}"):
        opts.add_argument(f)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


@pytest.fixture
def local_station(tmp_path: Path) -> Iterator[tuple[Server, Ingest]]:
    store = Store.open(f"sqlite:///{tmp_path}/station.db")
    auth.set_operator(store, "lan", "operator", PW)
    auth.set_operator(store, "boss", "supervisor", PW)
    ing = Ingest(store)
    with Server(Station(store, ing, secret_key="k" * 40, language="en")) as srv:
        yield srv, ing
    store.close()


def panic(ing: Ingest) -> None:
    eid = uuid.uuid4().hex
    ing.accept(
        "officeguard/office-a/event",
        (
            f'{{"id": "{eid}", "seq": 1, "site": "office-a", "ts": "2026-02-17T01:20:31+07:00", '
            f'"kind": "alarm", "cid": "E120", "zone": "z", "text": "panic", "detail": {{}}}}'
        ).encode(),
        0.0,
    )
    ing.flush(0.0)


def sound(driver: webdriver.Chrome) -> str:
    return str(driver.execute_script("return document.documentElement.dataset.sound"))


def test_the_sound_off_bar_shows_while_the_browser_blocks_sound_and_a_click_enables_it(
    local_station: tuple[Server, Ingest], tmp_path: Path
) -> None:
    srv, ing = local_station
    driver = chromium(tmp_path / "profile")  # Chromium's own rules: sound after a gesture
    try:
        wait = WebDriverWait(driver, 15)
        login(driver, srv.url, "lan", PW)
        driver.get(srv.url + "/")  # a page loaded afresh, as the office's screen at boot
        bar = wait.until(ec.visibility_of_element_located((By.ID, "sound-off")))
        assert bar.text.endswith("Sound is off: click to enable") and sound(driver) == "off"
        bar.click()
        wait.until(ec.invisibility_of_element_located((By.ID, "sound-off")))
        assert sound(driver) == "on"
        panic(ing)  # a new priority-1 incident while the queue is open: it beeps
        wait.until(lambda d: d.execute_script("return document.documentElement.dataset.beeps"))
        driver.find_element(By.LINK_TEXT, "Sites").click()  # a page opened from a click
        wait.until(ec.presence_of_element_located((By.ID, "board")))
        wait.until(lambda d: sound(d) == "on")  # the browser lets the sound go on: no bar
        assert not driver.find_element(By.ID, "sound-off").is_displayed()
        assert driver.execute_script("return sessionStorage.getItem('og-sound')") == "on"
        driver.get(srv.url + "/sites?lang=vi")  # typed in or reloaded: blocked again
        bar = wait.until(ec.visibility_of_element_located((By.ID, "sound-off")))
        assert "Âm báo đang tắt: bấm để bật" in bar.text
        driver.find_element(By.TAG_NAME, "h1").click()  # any first click on the page will do
        wait.until(ec.invisibility_of_element_located((By.ID, "sound-off")))
    finally:
        driver.quit()


def test_with_the_kiosks_autoplay_flag_the_sound_is_on_without_a_click(
    local_station: tuple[Server, Ingest], tmp_path: Path
) -> None:
    srv, _ = local_station
    driver = chromium(tmp_path / "profile", "--autoplay-policy=no-user-gesture-required")
    try:
        login(driver, srv.url, "lan", PW)
        driver.get(srv.url + "/sites")  # loaded afresh: without the flag, blocked (above)
        WebDriverWait(driver, 15).until(lambda d: sound(d) == "on")
        assert not driver.find_element(By.ID, "sound-off").is_displayed()
    finally:
        driver.quit()


def test_the_site_board_and_the_review_fit_a_phone_and_grow_on_the_big_screen(
    local_station: tuple[Server, Ingest], tmp_path: Path
) -> None:
    srv, ing = local_station
    P = "officeguard/văn-phòng-chi-nhánh-đà-nẵng"
    ing.accept(f"{P}/status", b'{"online": true, "version": "0.4.0"}', 0.0)
    for n in range(6):
        ing.accept(f"{P}/zone/khu-vuc-{n}/state", b'{"state": "armed_away", "alarm": false}', 0.0)
    ing.accept(
        f"{P}/trouble/state",
        '{"troubles": [{"source": "siren.hall", "cid": "E321", "what": "còi hành lang hỏng"}]}'.encode(),
        0.0,
    )
    ing.accept(f"{P}/patrol/đêm", b'{"state": "late", "last_round": {"outcome": "missed"}}', 0.0)
    for n in range(40):
        e = {"id": uuid.uuid4().hex, "seq": n + 1, "site": "văn-phòng-chi-nhánh-đà-nẵng",
             "ts": f"2026-{n % 12 + 1:02d}-10T22:00:00+07:00", "kind": ("alarm", "tamper")[n // 12 % 2],
             "cid": "E130", "zone": "z", "text": "x", "detail": {}}  # fmt: skip
        ing.accept(f"{P}/event", json.dumps(e).encode(), 0.0)
    ing.flush(0.0)
    ing.tick(0.0)
    driver = chromium(tmp_path / "profile")
    try:
        login(driver, srv.url, "boss", PW)
        report = "/site/văn-phòng-chi-nhánh-đà-nẵng/report?year=2026"
        sizes = {}
        for width, height in ((390, 844), (1920, 1080)):
            driver.set_window_size(width, height)
            for path in ("/sites", report):
                driver.get(srv.url + path)
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{path} is {overflow} px wider than a {width} px screen"
            label = driver.find_element(By.CSS_SELECTOR, "#chart text")
            sizes[width] = label.rect["height"]
            assert len(driver.find_elements(By.CSS_SELECTOR, "#chart rect.bar")) == 24
        assert sizes[390] >= 10 and sizes[1920] >= 2 * sizes[390]  # legible, and grows
    finally:
        driver.quit()
