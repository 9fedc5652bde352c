"""The detector node's logic: what it hears in, protocol lines out. No hardware here.

`Node` is fed by main.py (the hardware glue): BLE advertisements through `ble_irq` (the
Bluetooth interrupt), RF readings through `rf_sample`, and the passing time through `poll`.
It writes protocol lines through the `write` function it was given (the UART's write):

- `hello` once at start: firmware version and capabilities;
- `hb` every 5 s: seconds up, advertisements seen, Remote ID advertisements dropped;
- `rid` for every new Remote ID message (the same message from the same transmitter at most
  once a second);
- `rf` start / upd / end for energy over the noise floor in a band;
- `err` for a fault, repeated with every heartbeat while it stands (the controller clears
  its trouble once the faults stop coming).
"""

import binascii

import lineproto
from ble_rid import LEGACY_MAX, AdvRing, Dedup, find_odid, mac_text
from ticks import ticks_add, ticks_diff

FW_VERSION = "og-rid 0.1.0"
HB_MS = 5000

IRQ_SCAN_RESULT = 5  # bluetooth module event codes
IRQ_SCAN_DONE = 6


class Node:
    def __init__(self, write, caps=("ble4",), fw=FW_VERSION, dedup_ms=1000, ring_slots=16):
        self.write = write
        self.caps = list(caps)
        self.fw = fw
        self.seq = 0
        self.ring = AdvRing(ring_slots)
        self.dedup = Dedup(dedup_ms)
        self.bands = {}  # band name -> rf_energy.BandDetector
        self.faults = []  # standing faults, in the order they came
        self.scan_done = False
        self.up_ms = 0  # summed from tick differences: ticks_ms itself wraps after 12.4 days
        self._last_now = 0
        self.next_hb = 0
        self.lines = 0
        self.write_errors = 0
        self.rid_sent = 0

    # ---------------------------------------------------------------- output
    def send(self, t, fields):
        """Write one line: v, t, seq, then `fields` (a list of (key, value) pairs)."""
        line = lineproto.encode([("v", 1), ("t", t), ("seq", self.seq)] + list(fields))
        self.seq = (self.seq + 1) & 0xFFFF
        try:
            self.write(line)
            self.lines += 1
        except Exception:  # a UART error must not stop the detector
            self.write_errors += 1

    def fault(self, msg):
        msg = str(msg)[:120]
        if msg not in self.faults:
            self.faults.append(msg)
            self.send("err", [("msg", msg)])

    def clear_fault(self, msg):
        msg = str(msg)[:120]
        if msg in self.faults:
            self.faults.remove(msg)

    # ---------------------------------------------------------------- inputs
    def start(self, now):
        self._last_now = now
        self.next_hb = ticks_add(now, HB_MS)
        self.send("hello", [("fw", self.fw), ("caps", self.caps)])

    def ble_irq(self, event, data):
        """The Bluetooth interrupt handler: copy out, nothing else. `data` buffers are only
        valid during this call."""
        if event == IRQ_SCAN_RESULT:
            addr_type, addr, _adv_type, rssi, adv_data = data
            self.ring.put(addr_type, addr, rssi, adv_data)
        elif event == IRQ_SCAN_DONE:
            self.scan_done = True

    def rf_sample(self, band, dbm, now):
        detector = self.bands[band]
        for fields in detector.sample(dbm, now):
            self.send("rf", fields)

    def poll(self, now, max_items=32):
        """Main-loop work: forward queued advertisements, send the heartbeat when due."""
        self.up_ms += max(0, ticks_diff(now, self._last_now))
        self._last_now = now
        for _ in range(max_items):
            item = self.ring.get()
            if item is None:
                break
            _addr_type, addr, rssi, data = item
            found = find_odid(data)
            if found is None:
                continue
            _counter, msg = found
            if not self.dedup.should_send(addr, msg, now):
                continue
            tr = "ble5" if len(data) > LEGACY_MAX else "ble4"
            self.send(
                "rid",
                [
                    ("tr", tr),
                    ("mac", mac_text(addr)),
                    ("rssi", rssi),
                    ("hex", binascii.hexlify(msg).decode()),
                ],
            )
            self.rid_sent += 1
        if ticks_diff(now, self.next_hb) >= 0:
            self.heartbeat(now)

    def heartbeat(self, now):
        self.send(
            "hb", [("up", self.up_ms // 1000), ("adv", self.ring.seen), ("drop", self.ring.dropped)]
        )
        for msg in self.faults:
            self.send("err", [("msg", msg)])
        self.next_hb = ticks_add(self.next_hb, HB_MS)
        if ticks_diff(now, self.next_hb) >= 0:  # fell far behind: do not send a burst
            self.next_hb = ticks_add(now, HB_MS)
