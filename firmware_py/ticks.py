"""Millisecond ticks that wrap around, as MicroPython's `time` module has them.

On the ESP32 these are MicroPython's own `time.ticks_ms` and friends. Under CPython (the host
tests) the same arithmetic is provided here, with the ESP32's wrap period of 2**30 ms
(about 12.4 days), so the firmware's timing survives the wrap on the bench as on the roof.
Always compare ticks with `ticks_diff`, never with `<`.
"""

try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms  # MicroPython
except ImportError:  # CPython: host tests
    import time as _time

    PERIOD = 1 << 30
    _HALF = PERIOD >> 1

    def ticks_ms():
        return int(_time.monotonic() * 1000) & (PERIOD - 1)

    def ticks_add(ticks, delta):
        return (ticks + delta) & (PERIOD - 1)

    def ticks_diff(end, start):
        """end - start, correct across one wrap, in -PERIOD/2 .. PERIOD/2 - 1."""
        return ((end - start + _HALF) & (PERIOD - 1)) - _HALF

    def sleep_ms(ms):
        _time.sleep(ms / 1000)


__all__ = ["sleep_ms", "ticks_add", "ticks_diff", "ticks_ms"]
