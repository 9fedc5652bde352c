"""What the centre is told for one event: its ADM-CID or SIA-DCS data, from the event's own
`cid`.

There is one Contact ID table (controller/contact_id.py) and every event carries its `cid`
from it when it is journaled; MQTT publishes that `cid` and DC-09 sends it, so the two channels
can never disagree (SIA-DCS takes the SIA code of the same row). What DC-09 adds is numbers: the partition of the event's zone and the zone
number of its sensor or the user number of its user, from the `dc09` section (by default their
position in the config, 1 first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.config import Dc09, SiteConfig
from controller.dc09.frame import adm_cid_data, sia_dcs_data

FORMATS = ("ADM-CID", "SIA-DCS")
Message = dict[str, str]  # the data of one event in each format, by its token

TEST_CID = "E601"  # Contact ID 601: manual trigger test report (`officeguard dc09 test`)


@dataclass(frozen=True)
class Numbering:
    partitions: Mapping[str, int]
    sensors: Mapping[str, int]
    users: Mapping[str, int]

    @classmethod
    def of(cls, cfg: SiteConfig, dc09: Dc09) -> Numbering:
        def numbered(ids: list[str], pinned: Mapping[str, int]) -> dict[str, int]:
            out = {i: n for n, i in enumerate(ids, start=1)}
            out.update(pinned)
            return out

        return cls(
            partitions=numbered([z.id for z in cfg.zones], dc09.partitions),
            sensors=numbered([s.id for s in cfg.sensors], dc09.sensors),
            users=numbered([u.name for u in cfg.users], dc09.users),
        )

    def data(self, event: Mapping[str, Any], fmt: str = "ADM-CID") -> str | None:
        """The data of an event (a JSON object as the logbook keeps it) in `fmt`: `QEEE GG
        CCC` for ADM-CID, `Nri<area>/<code><zone>` for SIA-DCS; None for an event without a
        Contact ID code (nothing to tell a centre)."""
        cid = event.get("cid")
        if not cid:
            return None
        partition = min(self.partitions.get(event.get("zone") or "", 0), 99)
        number = 0
        if event.get("sensor"):
            number = self.sensors.get(event["sensor"], 0)
        elif event.get("user"):
            number = self.users.get(event["user"], 0)
        build = sia_dcs_data if fmt == "SIA-DCS" else adm_cid_data
        return build(str(cid), partition, min(number, 999))

    def message(self, event: Mapping[str, Any]) -> Message | None:
        """An event's data in every format (each path sends its own), None as for `data`."""
        if not event.get("cid"):
            return None
        return {fmt: self.data(event, fmt) or "" for fmt in FORMATS}
