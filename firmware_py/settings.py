"""Settings of one detector node: pins, radio scanning, RF calibration. Edit and copy to the
board with `mpremote cp settings.py :` (see README.md); no other file needs changing."""

# UART to the Raspberry Pi (3.3 V levels on both sides, 115200 8N1). UART0 is the USB REPL.
UART_ID = 2
UART_TX = 17  # ESP32 TX -> Pi RXD (GPIO 15, pin 10)
UART_RX = 16  # ESP32 RX <- Pi TXD (GPIO 14, pin 8), unused but wired
UART_BAUD = 115200
UART_TXBUF = 4096

# Bluetooth scanning: continuous, passive, duplicates not filtered
SCAN_INTERVAL_US = 30000
SCAN_WINDOW_US = 30000
DEDUP_MS = 1000  # the same Remote ID message from one transmitter at most once a second

# RF bands: one AD8318 log detector per band on an ADC1 pin (ADC2 is unusable with the radio)
# band name -> dict(pin, slope_mv_per_db, intercept_dbm, threshold_db, floor_dbm or None)
RF_BANDS = {
    "2g4": {"pin": 34, "slope_mv_per_db": -24.5, "intercept_dbm": 20.0, "threshold_db": 10.0},
    "5g8": {"pin": 35, "slope_mv_per_db": -24.5, "intercept_dbm": 20.0, "threshold_db": 10.0},
}
RF_READS_PER_SAMPLE = 8  # the highest of this many quick reads is one sample (catches bursts)
RF_DWELL = 3  # samples over the threshold before `start`
RF_RELEASE = 25  # samples under it before `end` (0.5 s at a 20 ms loop)
RF_UPD_MS = 1000
RF_CALIB_SAMPLES = 100  # noise floor learnt over the first 2 s (keep drones away at power-up)

LOOP_MS = 20
WDT_MS = 8000  # the watchdog resets the board if the main loop stalls this long
SAFE_MODE_PIN = 0  # hold the BOOT button (GPIO 0) during reset: firmware does not start
