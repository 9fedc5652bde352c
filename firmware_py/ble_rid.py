"""Bluetooth Remote ID: pick Open Drone ID messages out of BLE advertisements.

A drone's Bluetooth Remote ID is an advertisement with one AD structure of type 0x16
(service data, 16-bit UUID) for UUID 0xFFFA (ASTM), application code 0x0D, a message counter,
and then one 25-byte Open Drone ID message (Bluetooth 4 legacy advertising) or a message pack
(Bluetooth 5 extended advertising).

The BLE interrupt hands over each advertisement in a buffer that is only valid during the
call. `AdvRing.put` (called in the interrupt) checks cheaply whether it is Remote ID at all and
copies it into a preallocated slot; everything else (finding the message, de-duplication,
writing the line) happens in the main loop with `AdvRing.get`. The ring is single-producer /
single-consumer: the interrupt only moves `head`, the main loop only moves `tail`.
"""

from ticks import ticks_diff

AD_SERVICE_DATA_16 = 0x16
ODID_UUID = b"\xfa\xff"  # 0xFFFA, little-endian on air
ODID_APP_CODE = 0x0D
MESSAGE_SIZE = 25
LEGACY_MAX = 31  # bytes of advertising data in a Bluetooth 4 advertisement


def walk_ad(data):
    """(type, start, end) of each AD structure's payload, stopping at padding or a
    structure that runs past the end (a corrupt advertisement yields what came before)."""
    out = []
    i, n = 0, len(data)
    while i < n:
        length = data[i]
        if length == 0 or i + 1 + length > n:
            break
        out.append((data[i + 1], i + 2, i + 1 + length))
        i += 1 + length
    return out


def is_odid(data):
    """True if the advertisement carries Open Drone ID service data. No allocation: safe to
    call in the interrupt."""
    i, n = 0, len(data)
    while i < n:
        length = data[i]
        if length == 0 or i + 1 + length > n:
            return False
        if (
            data[i + 1] == AD_SERVICE_DATA_16
            and length >= 5 + MESSAGE_SIZE  # type, UUID, app code, counter, message
            and data[i + 2] == 0xFA
            and data[i + 3] == 0xFF
            and data[i + 4] == ODID_APP_CODE
        ):
            return True
        i += 1 + length
    return False


def find_odid(data):
    """(message counter, message bytes) from an advertisement, or None. The message is one
    25-byte message, or a message pack cut to the length its header gives."""
    for ad_type, start, end in walk_ad(data):
        if ad_type != AD_SERVICE_DATA_16 or end - start < 4 + MESSAGE_SIZE:
            continue
        if bytes(data[start : start + 2]) != ODID_UUID or data[start + 2] != ODID_APP_CODE:
            continue
        counter = data[start + 3]
        msg = bytes(data[start + 4 : end])
        if msg[0] >> 4 == 0xF:
            size = 3 + msg[1] * msg[2] if len(msg) >= 3 else len(msg)
            msg = msg[: max(MESSAGE_SIZE, min(size, len(msg)))]
        else:
            msg = msg[:MESSAGE_SIZE]
        return counter, msg
    return None


def mac_text(addr):
    return ":".join(f"{b:02x}" for b in addr)


class AdvRing:
    """Fixed slots for Remote ID advertisements between the BLE interrupt and the main loop."""

    def __init__(self, slots=16, size=255):
        self.slots = slots
        self.size = size
        self.data = [bytearray(size) for _ in range(slots)]
        self.addr = [bytearray(6) for _ in range(slots)]
        self.length = [0] * slots
        self.rssi = [0] * slots
        self.addr_type = [0] * slots
        self.head = 0  # next slot to write (interrupt only)
        self.tail = 0  # next slot to read (main loop only)
        self.seen = 0  # advertisements seen (interrupt only)
        self.dropped = 0  # Remote ID advertisements lost because the ring was full

    def put(self, addr_type, addr, rssi, adv_data):
        """In the interrupt: count the advertisement; keep it if it is Remote ID."""
        self.seen += 1
        if not is_odid(adv_data):
            return False
        nxt = (self.head + 1) % self.slots
        if nxt == self.tail:
            self.dropped += 1
            return False
        i = self.head
        n = min(len(adv_data), self.size)
        buf = self.data[i]
        for k in range(n):  # byte by byte: no slice objects in the interrupt
            buf[k] = adv_data[k]
        a = self.addr[i]
        for k in range(6):
            a[k] = addr[k]
        self.length[i] = n
        self.rssi[i] = rssi
        self.addr_type[i] = addr_type
        self.head = nxt
        return True

    def get(self):
        """In the main loop: (addr_type, addr bytes, rssi, data bytes), or None if empty."""
        if self.tail == self.head:
            return None
        i = self.tail
        item = (
            self.addr_type[i],
            bytes(self.addr[i]),
            self.rssi[i],
            bytes(self.data[i][: self.length[i]]),
        )
        self.tail = (i + 1) % self.slots
        return item


class Dedup:
    """Forward a message from one transmitter at most once per `hold_ms` unless it changed.
    Kept per address and message type (and authentication page), because a drone sends its
    messages in turn: Basic ID, Location, Operator ID ... each repeated several times."""

    def __init__(self, hold_ms=1000, max_entries=64):
        self.hold_ms = hold_ms
        self.max_entries = max_entries
        self.table = {}
        self.suppressed = 0

    @staticmethod
    def _key(addr, msg):
        kind = msg[0] >> 4
        page = msg[1] & 0x0F if kind == 0x2 and len(msg) > 1 else 0
        return bytes(addr) + bytes((kind, page))

    def should_send(self, addr, msg, now):
        key = self._key(addr, msg)
        entry = self.table.get(key)
        if entry is not None and entry[0] == msg and ticks_diff(now, entry[1]) < self.hold_ms:
            self.suppressed += 1
            return False
        if entry is None and len(self.table) >= self.max_entries:
            oldest = None
            for k, (_, t) in self.table.items():
                if oldest is None or ticks_diff(t, self.table[oldest][1]) < 0:
                    oldest = k
            del self.table[oldest]
        self.table[key] = (msg, now)
        return True
