"""The receiving centre as the logbook's second report channel, "dc09".

Built only when the config has a `dc09` section. Every event journaled waits on the "dc09"
channel as on "mqtt", each with its own cursor; the Outbox sends them one at a time through the
DC-09 sender and moves the cursor only on the centre's ACK, so events queued while the centre is
down go out in order when it answers again, and none is lost to a restart or a SIGKILL (they
are still pending in the logbook). A path that stops answering is a trouble (E350) on the site,
journaled (so MQTT and the office console show it) and restored when it answers again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from controller import texts
from controller.component import Component
from controller.dc09.frame import MAX_SEQ
from controller.dc09.keyfile import Dc09KeyError, read_key
from controller.dc09.mapping import Numbering
from controller.dc09.sender import Dc09Sender
from controller.events import EventDraft
from controller.reporting.outbox import Outbox

if TYPE_CHECKING:
    from controller.site import Site

CHANNEL = "dc09"
CID_TROUBLE = "E350"
SEQ_STATE = "dc09.seq"  # the last sequence number reserved (controller/dc09/sender.py)
WINDOW = 32  # events handed to the sender at once (it still sends them one by one)

texts.register(
    {
        "dc09.path_down": {
            "vi": "Sự cố truyền tin: mất đường truyền {path} tới trung tâm giám sát ({why})",
            "en": "Communication trouble: the {path} path to the receiving centre is down ({why})",
        },
        "dc09.refused": {
            "vi": "Sự cố truyền tin: trung tâm giám sát không nhận sự kiện seq {seq} ({kind}):"
            " {why}; vẫn giữ trong sổ nhật ký",
            "en": "Communication trouble: the receiving centre refused event seq {seq} ({kind}):"
            " {why}; kept in the logbook",
        },
        "dc09.refused_restored": {
            "vi": "Hết sự cố truyền tin: trung tâm giám sát lại nhận sự kiện ({refused} bị từ chối)",
            "en": "Communication trouble restored: the receiving centre takes events again"
            " ({refused} refused)",
        },
        "dc09.path_up": {
            "vi": "Hết sự cố truyền tin: đường truyền {path} tới trung tâm giám sát đã thông",
            "en": "Communication trouble restored: the {path} path to the receiving centre answers",
        },
    }
)


class Dc09Reporting(Component):
    """Sends every event to the centre (docs/dc09.md)."""

    name = "dc09"

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.sender: Dc09Sender | None = None
        self.outbox: Outbox | None = None
        self.key_error: str | None = None
        cfg = site.config.dc09
        if cfg is None:
            return
        # the channel even without a usable key: events wait for it and go out once fixed
        site.logbook.register_channel(CHANNEL)
        key = None
        if cfg.key_file is not None:
            try:
                key = read_key(cfg.key_file, cfg.key_format)
            except Dc09KeyError as e:
                self.key_error = str(e)
                site.trouble_board.raise_(
                    "dc09", {"source": "dc09", "cid": CID_TROUBLE, "what": self.key_error}
                )
                return  # never plain text where the centre expects encryption
        last = site.logbook.load_state(SEQ_STATE)
        self.sender = Dc09Sender(
            cfg,
            Numbering.of(site.config, cfg),
            key,
            site.clock,
            on_path=self._on_path,
            seq=last if isinstance(last, int) and 0 <= last <= MAX_SEQ else 0,
            on_reserve=lambda upto: site.logbook.save_state(SEQ_STATE, upto),
        )
        self.outbox = Outbox(
            site.logbook,
            self.sender,
            CHANNEL,
            # the sender sends one message at a time, in order; a window lets it take the
            # next events in one read of the logbook rather than one query per event
            window=WINDOW,
            batch=WINDOW,
            retry_delay=cfg.retry_delay.total_seconds(),
            record=site.record,
            now=site.clock.now,
            language=site.config.site.language,
            channel=CHANNEL,
            refused_texts=("dc09.refused", "dc09.refused_restored"),
            peer="receiving centre",
            clock=site.clock,
        )

    def start(self) -> None:
        if self.sender is not None and self.outbox is not None:
            self.sender.start()
            self.outbox.wake()  # what waited in the logbook since the last run

    def events(self, events: list[Any]) -> None:
        if self.outbox is not None:
            self.outbox.wake()

    def clock_stepped(self, delta: timedelta) -> None:
        if self.sender is not None:
            self.sender.clock_stepped(delta)
        if self.outbox is not None:
            self.outbox.clock_stepped(delta)

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        if self.sender is not None:
            self.sender.close()

    def status(self) -> dict[str, Any] | None:
        if self.site.config.dc09 is None:
            return None
        if self.sender is None or self.outbox is None:
            return {"dc09": {"connected": False, "error": self.key_error}}
        return {"dc09": {**self.sender.status(), "outbox": self.outbox.depth()}}

    def _on_path(self, path: str, up: bool, why: str) -> None:
        site = self.site
        key = f"dc09.{path}"
        lang = site.config.site.language
        if up:
            site.trouble_board.clear(key)
            draft = EventDraft(
                kind="trouble_restore",
                ts=site.clock.now(),
                cid="R" + CID_TROUBLE[1:],
                text=texts.render(lang, "dc09.path_up", path=path),
                detail={"source": "dc09", "path": path},
            )
        else:
            what = texts.render("en", "dc09.path_down", path=path, why=why)
            site.trouble_board.raise_(key, {"source": "dc09", "cid": CID_TROUBLE, "what": what})
            draft = EventDraft(
                kind="trouble",
                ts=site.clock.now(),
                cid=CID_TROUBLE,
                text=texts.render(lang, "dc09.path_down", path=path, why=why),
                detail={"source": "dc09", "path": path, "reason": why},
            )
        site.record([draft])
