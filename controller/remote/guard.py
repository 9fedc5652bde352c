"""Keeping remote command traffic away from the alarm: rate limits, a bounded queue, and a
budget for answers and log lines, all decided before a command is even parsed.

A site's broker is shared (the office's console, Home Assistant, every other site); anyone
with a login there may publish on `P/cmd` or `P/zone/<zone>/set`, as fast as the network goes.
What protects the alarm (docs/security.md):

* `admit(key)`: a token bucket per command topic and one for all of them together, checked
  first, before the payload is decoded. A message over the limit is dropped and counted: no
  parsing, no answer, no log line of its own.
* `may_answer(key)`: refusals that are answered before any code is checked (malformed, busy)
  share a smaller bucket; past it they are counted, not answered, so a flood of junk does not
  become a flood of `cmd/result` messages.
* the commands admitted wait for their code check in a bounded set (remote.MAX_PENDING);
  when it is full a command is answered "busy" (within the answer budget) and counted,
  instead of the queue growing.
* `note()` / `summary()`: what was dropped goes to the log as one line per `LOG_EVERY`
  seconds, with the counts, never one line per message.

The buckets meter network traffic and run on the loop's monotonic clock (passed in as `now`),
like the link's keepalive: the daemon's clock may be a virtual one that stands still in a
simulation, and a bucket that never refills would silence the office's own commands.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# commands per second per topic, and the burst a topic may send at once
TOPIC_RATE = 5.0
TOPIC_BURST = 20.0
# ... for every command topic together
TOTAL_RATE = 10.0
TOTAL_BURST = 40.0
# answers to refusals decided before a code is checked (malformed, busy): per topic
ANSWER_RATE = 1.0
ANSWER_BURST = 10.0
MAX_KEYS = 64  # distinct topics metered one by one; the others share one bucket
LOG_EVERY = 10.0  # seconds between summary log lines about dropped commands
OTHER = "(other topics)"


@dataclass
class TokenBucket:
    """`rate` tokens a second up to `burst`; a message takes one. Time is passed in."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float) -> bool:
        if self.at is not None and now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        if self.at is None or now > self.at:
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Buckets:
    rate: float
    burst: float
    by_key: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, key: str, now: float) -> bool:
        bucket = self.by_key.get(key)
        if bucket is None:
            if len(self.by_key) >= MAX_KEYS:
                key = OTHER
                bucket = self.by_key.get(key)
            if bucket is None:
                bucket = self.by_key[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(now)


class CommandGuard:
    """Rate limits and answer budget for the command topics (see the module docstring).
    `key` is the topic (or any stable name for a stream of commands); `now()` seconds on a
    monotonic clock."""

    def __init__(
        self,
        now: Callable[[], float],
        *,
        topic_rate: float = TOPIC_RATE,
        topic_burst: float = TOPIC_BURST,
        total_rate: float = TOTAL_RATE,
        total_burst: float = TOTAL_BURST,
        answer_rate: float = ANSWER_RATE,
        answer_burst: float = ANSWER_BURST,
    ) -> None:
        self._now = now
        self._topics = _Buckets(topic_rate, topic_burst)
        self._total = TokenBucket(total_rate, total_burst)
        self._answers = _Buckets(answer_rate, answer_burst)
        self.counts: Counter[str] = Counter()  # since start: received, over_rate, unanswered...
        self._unlogged: Counter[str] = Counter()  # dropped since the last summary line
        self._logged_at: float | None = None

    def admit(self, key: str) -> bool:
        """Whether a message that just arrived on `key` may be looked at at all."""
        self.counts["received"] += 1
        now = self._now()
        # the topic's own bucket first: one noisy topic does not drain the others' share
        if self._topics.take(key, now) and self._total.take(now):
            return True
        self.note("over_rate")
        return False

    def may_answer(self, key: str) -> bool:
        """Whether a refusal decided before any code check may be answered on `cmd/result`."""
        if self._answers.take(key, self._now()):
            return True
        self.note("unanswered")
        return False

    def note(self, what: str) -> None:
        """Count something dropped; a summary line goes to the log at most every LOG_EVERY s."""
        self.counts[what] += 1
        self._unlogged[what] += 1
        now = self._now()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.warning("remote commands: %s", self.summary())

    def summary(self) -> str:
        """What was dropped since the last summary (and resets that count)."""
        parts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(self._unlogged.items()))
        self._unlogged.clear()
        return f"dropped or not answered since the last report: {parts or 'nothing'}"


# a topic that sends this many messages over its limit within FLOOD_WINDOW seconds is flooded:
# the daemon stops listening to it for a while (the broker then drops the flood, not us)
FLOOD_DROPS = 100
FLOOD_WINDOW = 1.0
PAUSE_FIRST = 5.0  # seconds; doubled while the flood goes on, up to PAUSE_MAX
PAUSE_MAX = 60.0
PAUSE_FORGET = 120.0  # a topic quiet this long after a pause starts again from PAUSE_FIRST


@dataclass
class _Flood:
    window_start: float = 0.0
    drops: int = 0
    pause: float = 0.0  # the length of the last pause
    resumed_at: float | None = None


class FloodDetector:
    """Tells when a command topic is flooded, and for how long to stop listening to it.

    `dropped(key)` after each message dropped over the rate: True when the topic has just
    become flooded (the caller then pauses it for `pause_for(key)` seconds and calls
    `resumed(key)` when it listens again). Pauses double while the flood goes on. Under a
    flood, every message on that topic is lost, the office's as well as the attacker's; they
    would be anyway (a rate limit cannot tell them apart), and the alarm keeps its CPU."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._topics: dict[str, _Flood] = {}

    def dropped(self, key: str) -> bool:
        now = self._now()
        st = self._topics.get(key)
        if st is None:
            if len(self._topics) >= MAX_KEYS:
                key = OTHER
            st = self._topics.setdefault(key, _Flood(now))
        if now - st.window_start > FLOOD_WINDOW:
            st.window_start, st.drops = now, 0
        st.drops += 1
        if st.drops < FLOOD_DROPS:
            return False
        st.drops = 0
        quiet = st.resumed_at is None or now - st.resumed_at >= PAUSE_FORGET
        st.pause = PAUSE_FIRST if quiet or not st.pause else min(PAUSE_MAX, st.pause * 2)
        return True

    def pause_for(self, key: str) -> float:
        st = self._topics.get(key) or self._topics.get(OTHER)
        return st.pause if st is not None and st.pause else PAUSE_FIRST

    def resumed(self, key: str) -> None:
        st = self._topics.get(key)
        if st is not None:
            st.resumed_at = self._now()
            st.window_start, st.drops = st.resumed_at, 0
