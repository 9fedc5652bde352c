"""RF energy in one band from an AD8318-style logarithmic power detector on an ADC pin.

The AD8318 turns RF power into a voltage that falls by about 25 mV per dB (about 2.1 V at
-60 dBm down to about 0.5 V at 0 dBm). With a band-pass filter and antenna for 2.4 GHz or
5.8 GHz in front of it, it shows when a drone's control or video link is transmitting nearby,
even if the drone sends no Remote ID.

`BandDetector` learns the noise floor at start-up (the average of the first samples), then:
a sample `threshold_db` over the floor starts counting; `dwell` samples in a row over it give
`start`; while it stays over (less `hysteresis_db`) an `upd` follows every `upd_ms`; `release`
samples in a row under it give `end`. While nothing is detected the floor follows slow drift
(temperature, a neighbour's Wi-Fi) with a small weight per sample.
"""

from ticks import ticks_diff


def ad8318_dbm(mv, slope_mv_per_db=-24.5, intercept_dbm=20.0):
    """Input power in dBm from the detector's output in millivolts (datasheet model
    V = slope * (P - intercept)); calibrate slope and intercept per unit, see README.md."""
    return intercept_dbm + mv / slope_mv_per_db


class BandDetector:
    def __init__(
        self,
        band,
        threshold_db=10.0,
        hysteresis_db=3.0,
        dwell=3,
        release=10,
        upd_ms=1000,
        calib_samples=100,
        floor_weight=1 / 256,
        floor_dbm=None,
    ):
        self.band = band
        self.threshold_db = threshold_db
        self.hysteresis_db = hysteresis_db
        self.dwell = dwell
        self.release = release
        self.upd_ms = upd_ms
        self.calib_samples = calib_samples
        self.floor_weight = floor_weight
        self.floor = floor_dbm  # None until calibrated (or given in settings)
        self._calib_sum = 0.0
        self._calib_n = 0
        self.active = False
        self.next_id = 0
        self.id = None
        self._above = 0
        self._below = 0
        self._first_above = 0
        self._last_above = 0
        self._last_upd = 0
        self.peak = None
        self.detections = 0

    @property
    def calibrated(self):
        return self.floor is not None

    def _event(self, ev, now):
        end_t = self._last_above if ev == "end" else now
        return [
            ("band", self.band),
            ("ev", ev),
            ("id", self.id),
            ("peak_dbm", round(self.peak)),
            ("floor_dbm", round(self.floor)),
            ("dur_ms", max(0, ticks_diff(end_t, self._first_above))),
        ]

    def sample(self, dbm, now):
        """One reading (dBm) at `now` (ticks ms). Returns a list of `rf` message fields
        (lists of (key, value) pairs without v/t/seq), usually empty."""
        if self.floor is None:
            self._calib_sum += dbm
            self._calib_n += 1
            if self._calib_n >= self.calib_samples:
                self.floor = self._calib_sum / self._calib_n
            return []
        over = self.floor + self.threshold_db
        if not self.active:
            if dbm >= over:
                if self._above == 0:
                    self._first_above = now
                    self.peak = dbm
                self._above += 1
                self._last_above = now
                self.peak = max(self.peak, dbm)
                if self._above >= self.dwell:
                    self.active = True
                    self.id = self.next_id
                    self.next_id = (self.next_id + 1) & 0xFFFF
                    self.detections += 1
                    self._below = 0
                    self._last_upd = now
                    return [self._event("start", now)]
            else:
                self._above = 0
                self.floor += (dbm - self.floor) * self.floor_weight
            return []
        self.peak = max(self.peak, dbm)
        if dbm >= over - self.hysteresis_db:
            self._below = 0
            self._last_above = now
            if ticks_diff(now, self._last_upd) >= self.upd_ms:
                self._last_upd = now
                return [self._event("upd", now)]
            return []
        self._below += 1
        if self._below >= self.release:
            out = [self._event("end", now)]
            self.active = False
            self._above = 0
            self._below = 0
            self.peak = None
            return out
        return []
