"""Event text of the alarm engine, in Vietnamese and English."""

from __future__ import annotations

from controller import texts

MODE_NAMES = {
    "vi": {"away": "toàn phần", "home": "có người", "night": "ban đêm"},
    "en": {"away": "away", "home": "home", "night": "night"},
}

AUTOMATIC = {"vi": "lịch tự động", "en": "the schedule"}

texts.register(
    {
        "engine.arming": {
            "vi": "Đang bật bảo vệ {zone} ({mode}) bởi {who}, thời gian ra {delay}",
            "en": "Arming {zone} ({mode}) by {who}, exit delay {delay}",
        },
        "engine.exit_restart": {
            "vi": "{sensor} ({zone}) mở lại trong thời gian ra: thời gian ra bắt đầu lại ({delay})",
            "en": "{sensor} ({zone}) reopened during the exit delay: exit delay restarted ({delay})",
        },
        "engine.armed": {
            "vi": "Đã bật bảo vệ {zone} ({mode}) bởi {who}",
            "en": "{zone} armed {mode} by {who}",
        },
        "engine.disarmed": {
            "vi": "Đã tắt bảo vệ {zone} bởi {who}",
            "en": "{zone} disarmed by {who}",
        },
        "engine.arm_failed": {
            "vi": "Không bật được bảo vệ {zone}: đang mở {sensors}",
            "en": "Cannot arm {zone}: open {sensors}",
        },
        "engine.force_bypass": {
            "vi": "Bỏ qua {sensor} ({zone}) đang mở khi bật bảo vệ bởi {who}",
            "en": "{sensor} ({zone}) bypassed, open at arming by {who}",
        },
        "engine.bypass": {
            "vi": "{sensor} ({zone}) bị bỏ qua bởi {who}",
            "en": "{sensor} ({zone}) bypassed by {who}",
        },
        "engine.unbypass": {
            "vi": "{sensor} ({zone}) hoạt động lại (hết bỏ qua) bởi {who}",
            "en": "{sensor} ({zone}) unbypassed by {who}",
        },
        "engine.entry": {
            "vi": "{sensor} ({zone}) mở: thời gian vào {delay} để tắt bảo vệ",
            "en": "{sensor} ({zone}) opened: entry delay {delay} to disarm",
        },
        "engine.alarm_open": {
            "vi": "Báo động: {sensor} ({zone}) mở khi đang bật bảo vệ",
            "en": "Alarm: {sensor} ({zone}) opened while armed",
        },
        "engine.alarm_motion": {
            "vi": "Báo động: {sensor} ({zone}) phát hiện chuyển động khi đang bật bảo vệ",
            "en": "Alarm: {sensor} ({zone}) detected motion while armed",
        },
        "engine.alarm_entry": {
            "vi": "Báo động: {sensor} ({zone}) mở, hết thời gian vào mà chưa tắt bảo vệ",
            "en": "Alarm: {sensor} ({zone}) opened and the entry delay ran out without a disarm",
        },
        "engine.alarm_safe": {
            "vi": "Báo động: {sensor} ({zone}) bị tác động ({pulses} lần rung trong {window})",
            "en": "Alarm: attack on {sensor} ({zone}) ({pulses} knocks within {window})",
        },
        "engine.alarm_safe_sustained": {
            "vi": "Báo động: {sensor} ({zone}) rung liên tục hơn {window}",
            "en": "Alarm: {sensor} ({zone}) vibrating for more than {window}",
        },
        "engine.alarm_fire": {
            "vi": "Báo cháy: {sensor} ({zone})",
            "en": "Fire alarm: {sensor} ({zone})",
        },
        "engine.alarm_panic": {
            "vi": "Báo động khẩn cấp: {sensor} ({zone})",
            "en": "Panic alarm: {sensor} ({zone})",
        },
        "engine.alarm_24h": {
            "vi": "Báo động 24 giờ: {sensor} ({zone})",
            "en": "24-hour alarm: {sensor} ({zone})",
        },
        "engine.alarm_tamper": {
            "vi": "Báo động phá hoại: {sensor} ({zone}) bị mở khi đang bật bảo vệ",
            "en": "Tamper alarm: {sensor} ({zone}) opened while armed",
        },
        "engine.alarm_external": {
            "vi": "Báo động: {text} ({zone})",
            "en": "Alarm: {text} ({zone})",
        },
        "engine.alarm_restore": {
            "vi": "{sensor} ({zone}) trở lại bình thường",
            "en": "{sensor} ({zone}) back to normal",
        },
        "engine.exit_error": {
            "vi": "Lỗi thời gian ra: {sensor} ({zone}) vẫn mở khi hết thời gian ra",
            "en": "Exit error: {sensor} ({zone}) still open when the exit delay ended",
        },
        "engine.recent_closing": {
            "vi": "Báo động trong vòng {window} sau khi bật bảo vệ {zone}",
            "en": "Alarm within {window} of arming {zone}",
        },
        "engine.cancel": {
            "vi": "Hủy báo động {zone}: {who} tắt bảo vệ trong {window}",
            "en": "Alarm cancelled in {zone}: disarmed by {who} within {window}",
        },
        "engine.swinger": {
            "vi": "{sensor} ({zone}) báo động quá {limit} lần, ngừng báo đến khi tắt bảo vệ",
            "en": "{sensor} ({zone}) tripped more than {limit} times: shut down until disarmed",
        },
        "engine.tamper": {
            "vi": "Phá hoại: {sensor} ({zone}) bị mở",
            "en": "Tamper: {sensor} ({zone}) opened",
        },
        "engine.tamper_restore": {
            "vi": "Hết phá hoại: {sensor} ({zone}) đã đóng",
            "en": "Tamper restored: {sensor} ({zone}) closed",
        },
        "engine.stuck_arm": {
            "vi": "Sự cố: {sensor} ({zone}) vẫn hoạt động khi bật bảo vệ",
            "en": "Trouble: {sensor} ({zone}) still active when armed",
        },
        "engine.stuck_boot": {
            "vi": "Sự cố: {sensor} ({zone}) đang hoạt động khi khởi động, vùng đang bật bảo vệ",
            "en": "Trouble: {sensor} ({zone}) active at start-up while the zone is armed",
        },
        "engine.stuck_restore": {
            "vi": "Hết sự cố: {sensor} ({zone}) trở lại bình thường",
            "en": "Trouble restored: {sensor} ({zone}) back to normal",
        },
        "engine.siren_timeout": {
            "vi": "Còi {zone} tắt sau {time}; báo động vẫn được ghi nhớ đến khi tắt bảo vệ",
            "en": "Sirens of {zone} off after {time}; the alarm stays in memory until disarmed",
        },
        "engine.silenced": {
            "vi": "Tắt còi {zone} bởi {who}",
            "en": "Sirens of {zone} silenced by {who}",
        },
        "engine.output_fault": {
            "vi": "Sự cố đầu ra {output}: {reason}",
            "en": "Output fault on {output}: {reason}",
        },
        "engine.output_fault_restore": {
            "vi": "Đầu ra {output} hoạt động bình thường trở lại",
            "en": "Output {output} working again",
        },
    }
)
