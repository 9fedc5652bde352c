"""Drone detector node firmware (MicroPython on an ESP32): hardware glue and the main loop.

Listens for Bluetooth Remote ID, measures RF energy in the 2.4 and 5.8 GHz bands, and reports
both to the Raspberry Pi over the UART as protocol lines (see node.py and lineproto.py).
MicroPython runs this file at boot. Hold the BOOT button during reset to skip it (safe mode,
for `mpremote`), since the watchdog would otherwise reset a board stopped at the REPL.
"""

import bluetooth
import machine
import micropython
import settings
from node import Node
from rf_energy import BandDetector, ad8318_dbm
from ticks import sleep_ms, ticks_ms

micropython.alloc_emergency_exception_buf(100)


class Detector:
    """The node with its hardware: UART, ADC pins, Bluetooth radio, watchdog."""

    def __init__(self, cfg=settings):
        self.cfg = cfg
        self.uart = machine.UART(
            cfg.UART_ID,
            baudrate=cfg.UART_BAUD,
            tx=cfg.UART_TX,
            rx=cfg.UART_RX,
            txbuf=cfg.UART_TXBUF,
        )
        caps = ["ble4"] + ["rf" + band[0] + band[2] for band in cfg.RF_BANDS]
        self.node = Node(self.uart.write, caps=caps, dedup_ms=cfg.DEDUP_MS)
        self.adcs = {}
        self.cal = {}
        for band, b in cfg.RF_BANDS.items():
            adc = machine.ADC(machine.Pin(b["pin"]))
            adc.atten(machine.ADC.ATTN_11DB)
            self.adcs[band] = adc
            self.cal[band] = (b["slope_mv_per_db"], b["intercept_dbm"])
            self.node.bands[band] = BandDetector(
                band,
                threshold_db=b["threshold_db"],
                dwell=cfg.RF_DWELL,
                release=cfg.RF_RELEASE,
                upd_ms=cfg.RF_UPD_MS,
                calib_samples=cfg.RF_CALIB_SAMPLES,
                floor_dbm=b.get("floor_dbm"),
            )
        self.ble = bluetooth.BLE()
        self.wdt = None

    def start(self, now):
        self.node.start(now)
        try:
            self.ble.active(True)
            self.ble.irq(self.node.ble_irq)
            self.scan()
        except Exception as e:  # no radio: still report RF, and say why there is no BLE
            self.node.fault("ble init: " + str(e))
        self.wdt = machine.WDT(timeout=self.cfg.WDT_MS)

    def scan(self):
        # duration 0 = scan until stopped; passive; the stack reports every advertisement
        self.ble.gap_scan(0, self.cfg.SCAN_INTERVAL_US, self.cfg.SCAN_WINDOW_US, False)

    def read_dbm(self, band):
        adc = self.adcs[band]
        slope, intercept = self.cal[band]
        low_mv = None
        for _ in range(self.cfg.RF_READS_PER_SAMPLE):
            mv = adc.read_uv() / 1000
            if low_mv is None or mv < low_mv:
                low_mv = mv
        return ad8318_dbm(low_mv, slope, intercept)  # the lowest voltage is the most power

    def step(self, now):
        if self.wdt is not None:
            self.wdt.feed()
        if self.node.scan_done:  # the stack ended the scan: start it again
            self.node.scan_done = False
            try:
                self.scan()
                self.node.clear_fault("ble scan stopped")
            except Exception:
                self.node.fault("ble scan stopped")
        for band in self.adcs:
            try:
                dbm = self.read_dbm(band)
            except Exception:
                self.node.fault("adc " + band)
                continue
            self.node.clear_fault("adc " + band)
            self.node.rf_sample(band, dbm, now)
        self.node.poll(now)


def safe_mode(cfg=settings):
    return machine.Pin(cfg.SAFE_MODE_PIN, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0


def run(detector=None, loops=None, now_ms=ticks_ms, sleep=sleep_ms):
    """The main loop. `loops`, `now_ms` and `sleep` are for host tests."""
    if detector is None:
        if safe_mode():
            print("safe mode: BOOT held, detector firmware not started")
            return None
        detector = Detector()
    detector.start(now_ms())
    n = 0
    while loops is None or n < loops:
        now = now_ms()
        try:
            detector.step(now)
        except Exception as e:  # keep running; the watchdog covers a hang, not an error
            detector.node.fault("loop: " + str(e))
        sleep(detector.cfg.LOOP_MS)
        n += 1
    return detector


if __name__ == "__main__":
    run()
