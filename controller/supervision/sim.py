"""What the `sim wiring` and `sim power` commands put on the simulated ADC's channels, and
their refusals (in the site's language, as every refusal of the control socket)."""

from __future__ import annotations

from controller import texts
from controller.config import SiteConfig
from controller.control import ControlError
from controller.refusals import refusal
from controller.wiring import loop_volts

texts.register(
    {
        "refused.not_a_loop": {
            "vi": "{sensor} không phải vòng giám sát trên ADC",
            "en": "{sensor} is no supervised loop on the ADC",
        },
        "refused.bad_loop_state": {
            "vi": "trạng thái vòng là normal, alarm, cut, short hoặc một điện áp 0-{vref} V",
            "en": "a loop's state is normal, alarm, cut, short or a voltage 0-{vref} V",
        },
        "refused.bad_power": {
            "vi": "hãy dùng: mains on|off, battery VÔN, siren CÒI ok|open|short, adc on|off "
            "(cho những gì cấu hình có)",
            "en": "use: mains on|off, battery VOLTS, siren SIREN ok|open|short, adc on|off "
            "(for what the config has)",
        },
    }
)


def _refuse(cfg: SiteConfig, reason: str, **fields: object) -> ControlError:
    return refusal(cfg.site.language, reason, **fields)


def sim_loop_volts(cfg: SiteConfig, sensor: str, state: object) -> float:
    """The volts for `sim wiring SENSOR normal|alarm|cut|short|VOLTS`."""
    loop = cfg.sensor(sensor).loop
    if loop is None or cfg.adc is None:
        raise _refuse(cfg, "not_a_loop", sensor=sensor)
    vref = cfg.adc.vref
    if state in ("normal", "alarm", "cut", "short"):
        try:
            return loop_volts(loop, vref, str(state))
        except ValueError:  # a single EOL has no band of its own for one of them
            pass
    try:
        volts = float(str(state))
    except ValueError:
        raise _refuse(cfg, "bad_loop_state", vref=vref) from None
    if not 0.0 <= volts <= vref:
        raise _refuse(cfg, "bad_loop_state", vref=vref)
    return volts


def sim_power_volts(
    cfg: SiteConfig, what: object, value: object, siren: object = None
) -> tuple[int, float]:
    """(channel, volts) for `sim power mains on|off`, `battery VOLTS`, `siren SIREN ok|open|short`."""
    p, adc = cfg.power, cfg.adc
    if p is None or adc is None:
        raise _refuse(cfg, "bad_power")
    if what == "mains" and p.mains is not None and p.mains.channel is not None and value in ("on", "off"):
        return p.mains.channel, adc.vref if value == "on" else 0.0
    if what == "battery" and p.battery is not None:
        try:
            volts = float(str(value))
        except ValueError:
            raise _refuse(cfg, "bad_power") from None
        if 0.0 <= volts <= 30.0:
            return p.battery.channel, min(adc.vref, volts / p.battery.divider)
    if what == "siren" and value in ("ok", "open", "short"):
        line = next((x for x in p.sirens if x.siren == siren), None)
        if line is not None:
            volts = {
                "ok": (line.short_below + line.open_above) / 2,
                "open": adc.vref,
                "short": 0.0,
            }[str(value)]
            return line.channel, round(volts, 4)
    raise _refuse(cfg, "bad_power")
