"""Host stand-in for MicroPython's `machine` module: just what the detector firmware uses,
with hooks for tests (UART.written, ADC.source, WDT.feeds)."""


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    levels = {}  # pin number -> level, set by tests (default 1: pulled up)

    def __init__(self, pin, mode=-1, pull=-1):
        self.pin = pin

    def value(self, v=None):
        if v is None:
            return Pin.levels.get(self.pin, 1)
        Pin.levels[self.pin] = v
        return None


class UART:
    instances = []

    def __init__(self, uart_id, baudrate=9600, tx=None, rx=None, txbuf=256, **kw):
        self.id = uart_id
        self.baudrate = baudrate
        self.tx, self.rx = tx, rx
        self.written = bytearray()
        self.fail = False
        UART.instances.append(self)

    def write(self, data):
        if self.fail:
            raise OSError(5, "EIO")
        self.written += data
        return len(data)

    def lines(self):
        out = bytes(self.written).split(b"\n")
        return [line + b"\n" for line in out[:-1]]


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3
    sources = {}  # pin number -> callable returning microvolts, set by tests

    def __init__(self, pin, atten=None):
        self.pin = pin.pin if isinstance(pin, Pin) else pin

    def atten(self, value):
        self._atten = value

    def read_uv(self):
        source = ADC.sources.get(self.pin)
        return int(source()) if source is not None else 2_000_000


class WDT:
    instances = []

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        WDT.instances.append(self)

    def feed(self):
        self.feeds += 1


def reset():
    raise SystemExit("machine.reset()")


def unique_id():
    return b"\x24\x0a\xc4\x00\x00\x01"
