"""Host stand-in for MicroPython's `bluetooth` module. Tests call `BLE.deliver(...)` to play an
advertisement into the registered IRQ handler the way the radio does: the buffers are
memoryviews that are overwritten as soon as the handler returns, so firmware that keeps them
instead of copying them out shows up as corrupted data."""


class BLE:
    last = None

    def __init__(self):
        self._active = False
        self.handler = None
        self.scans = []
        self.fail_active = False
        BLE.last = self

    def active(self, state=None):
        if state is None:
            return self._active
        if self.fail_active:
            raise OSError(19, "ENODEV")
        self._active = bool(state)
        return self._active

    def irq(self, handler):
        self.handler = handler

    def gap_scan(self, duration_ms, interval_us=1280000, window_us=11250, active=False):
        self.scans.append((duration_ms, interval_us, window_us, active))

    def deliver(self, addr, rssi, adv_data, addr_type=1, adv_type=3):
        addr_buf = bytearray(addr)
        data_buf = bytearray(adv_data)
        self.handler(5, (addr_type, memoryview(addr_buf), adv_type, rssi, memoryview(data_buf)))
        for i in range(len(data_buf)):  # the radio reuses its buffer
            data_buf[i] = 0xEE
        for i in range(len(addr_buf)):
            addr_buf[i] = 0xEE

    def scan_done(self):
        self.handler(6, None)
