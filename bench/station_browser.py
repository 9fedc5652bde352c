"""Station, edge to browser: a door opens at a simulated site (the real daemon on simulated pins,
in this process, as bench/latency.py runs it) until the incident it opens is in the queue page
of an open Chromium (headless, driven by Selenium) logged in to the monitoring station (its own
process, `officeguard station serve`, SQLite): broker, station ingest, database, Server-Sent
Events, the page fetching its queue. Baseline, sample by sample in the same run: the same
alarm's edge -> event received by a bare subscriber through the same Mosquitto (latency.py's
second figure). Target (issue 19): p50 within 3x the baseline.

The page notes when each incident's row enters its DOM (a MutationObserver, on
`performance.timeOrigin + performance.now()`, the wall clock) and answers the bench's one
waiting script call then; the edge is taken on the same clock (`time.time()`). After each sample the bench closes the incident over HTTP, as an operator
would, so that the next alarm opens a new one.

    python -m bench.station_browser [--quick]
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    InProcessSite,
    Subscriber,
    broker,
    figure,
    percentile,
    print_figures,
    workspace,
)
from bench.latency import SIREN_PIN, latency_config

TARGET_RATIO = 3.0
PW = "bench operator password"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

OBSERVE = """
window.__seen = {};
window.__want = {};
const note = () => {
  const t = performance.timeOrigin + performance.now();
  for (const tr of document.querySelectorAll("tr.incident")) {
    const id = tr.id.slice(4);
    if (!(id in window.__seen)) window.__seen[id] = t;
    if (window.__want[id]) { window.__want[id](t); delete window.__want[id]; }
  }
};
note();
new MutationObserver(note).observe(document.getElementById("queue"), {childList: true, subtree: true});
"""


def _chrome(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        raise BenchError("Chromium is needed: sh scripts/need-chromium.sh")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--window-size=1280,900", f"--user-data-dir={profile}"):  # fmt: skip
        opts.add_argument(f)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def _login(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "/login")
    driver.find_element(By.ID, "login").send_keys("bench")
    driver.find_element(By.ID, "password").send_keys(PW)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "count")))
    driver.execute_script(OBSERVE)


def _seen(driver: Any, eid: str, timeout: float = 10.0) -> float:
    """When the incident's row entered the page (wall clock, seconds). One script call that
    the page answers when the row comes (no polling, which would busy the page's thread)."""
    driver.set_script_timeout(timeout)
    t = driver.execute_async_script(
        "const [id, done] = arguments;"
        "if (window.__seen[id]) done(window.__seen[id]); else window.__want[id] = done;",
        eid,
    )
    if t is None:
        raise BenchError(f"incident {eid} never appeared in the browser")
    return float(t) / 1000


def _close_all(web: Any) -> None:
    """Close every open incident, as an operator would (resolution: test), until the queue
    stays empty (the last sample's later events may still be on their way)."""
    empty_since = None
    end = time.monotonic() + 10
    while time.monotonic() < end:
        ids = re.findall(r'id="inc-([0-9a-f]+)"', web.get("/").body)
        if not ids:
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since > 0.3:
                return
            time.sleep(0.05)
            continue
        empty_since = None
        for iid in ids:
            page = web.get(f"/incident/{iid}")
            web.post(f"/incident/{iid}/close", {"csrf": page.csrf(), "resolution": "test"})
    raise BenchError("the queue did not empty")


async def _samples(site: InProcessSite, port: int, driver: Any, web: Any, n: int) -> dict[str, Any]:
    from controller.engine import Arm, Disarm

    d = site.daemon
    assert d.journal is not None and d.hw is not None
    step = d.cfg.hardware.debounce + timedelta(milliseconds=1)
    siren = d.hw.factory.pin(SIREN_PIN)
    siren_on = threading.Event()
    siren.listeners.append(lambda pin: siren_on.set() if pin.state else None)
    if not await site.drained(10):
        raise BenchError("the start-up events were not delivered")
    sub = await asyncio.to_thread(Subscriber, port, "officeguard/bench-site/event", times=True)
    edges: dict[str, tuple[float, float]] = {}  # event id -> (perf_counter, wall clock) at the edge
    browser: dict[str, float] = {}

    def open_door() -> tuple[float, float]:
        siren_on.clear()
        t0, w0 = time.perf_counter(), time.time()
        site.sim.set("door.hall", True)
        if not siren_on.wait(5):
            raise BenchError("the siren did not sound")
        return t0, w0

    try:
        for i in range(n + 3):
            warm = i < 3
            d.submit(Arm(("hall",), "away", user="guard", source="cli"))
            seq0 = d.journal.last_seq()
            await site.drained(10)
            await asyncio.to_thread(_close_all, web)  # and the page has shown it empty
            t0, w0 = await asyncio.to_thread(open_door)
            if not await site.drained(10):
                raise BenchError("the alarm was not delivered")
            alarm = [e for e in d.journal.events(kind="alarm") if e.seq > seq0]
            if not alarm:
                raise BenchError("the door opening raised no alarm event")
            eid = alarm[0].id
            seen = await asyncio.to_thread(_seen, driver, eid)
            if not warm:
                edges[eid] = (t0, w0)
                browser[eid] = seen - w0
            d.submit(Disarm(("hall",), user="guard", source="cli"))
            site.sim.set("door.hall", False)
            for _ in range(2):
                await asyncio.sleep(0)
                site.clock.advance(step)
            await site.drained(10)
        await asyncio.sleep(0.2)
        res = await asyncio.to_thread(sub.finish)
    finally:
        sub.close()
    times: dict[str, float] = res["times"]
    return {
        "browser": [browser[k] for k in edges if k in times],
        "subscriber": [times[k] - t0 for k, (t0, _) in edges.items() if k in times],
        "missing": sum(1 for k in edges if k not in times),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from tests.station.proc import StationProc, og_station
    from tests.station.webclient import Browser

    samples = 20 if quick else 100
    print(f"\n== station_browser: edge -> incident in an open Chromium page, {samples} samples")
    profile = tempfile.mkdtemp(prefix="og-bench-chromium-")
    with workspace("station_browser") as w, broker(w) as b:
        db = f"sqlite:///{w / 'station.db'}"
        made = og_station("operator", "bench", "--db", db, input=PW + "\n")
        if made.returncode != 0:
            raise BenchError(f"cannot add the bench operator: {made.stderr}")
        station = StationProc(w, db, b.url, "--language", "en")
        station.start()
        driver = None
        try:
            driver = _chrome(profile)
            _login(driver, station.url)
            web = Browser(station.url)
            web.login("bench", PW)
            cfg = latency_config(w / "site.yaml", b.url)

            async def main() -> dict[str, Any]:
                site = InProcessSite(cfg, w / "state")
                await site.start()
                try:
                    return await _samples(site, b.port, driver, web, samples)
                finally:
                    await site.stop()

            r = asyncio.run(main())
        finally:
            if driver is not None:
                driver.quit()
            station.stop()
            shutil.rmtree(profile, ignore_errors=True)
    ms = {k: [1000 * x for x in r[k]] for k in ("browser", "subscriber")}
    figures = []
    for p in (50, 99):
        figures.append(
            figure(
                f"edge -> incident in the browser p{p}",
                percentile(ms["browser"], p),
                "ms",
                baseline=percentile(ms["subscriber"], p),
                baseline_name="edge -> event at a subscriber",
                target=f"<= {TARGET_RATIO:.0f}x baseline" if p == 50 else "",
                ok=(percentile(ms["browser"], 50) <= TARGET_RATIO * percentile(ms["subscriber"], 50))
                if p == 50
                else None,
            )
        )
    figures.append(figure("alarm events not received", r["missing"], "", ok=r["missing"] == 0))
    print_figures(f"station_browser ({len(ms['browser'])} samples)", figures)
    return {"name": "station_browser", "quick": quick, "figures": figures}


if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv[1:])
    raise SystemExit(0 if all(f["pass"] is not False for f in out["figures"]) else 1)
