"""Why the daemon refuses a local or remote command, as one sentence in the site's language.

Every refusal the control socket (the CLI) or a remote command gets back is made here from a
reason key and a template in vi and en, so the operator reads one language from the first word
to the last: no English frame around a Vietnamese event text. The key goes along as `reason`
(stable, for scripts); the sentence never holds a code.
"""

from __future__ import annotations

from typing import Any

from controller import texts
from controller.control import ControlError

texts.register(
    {
        "refused": {"vi": "Từ chối: {what}", "en": "Refused: {what}"},
        "refused.no_zone": {"vi": "hãy nêu ít nhất một vùng", "en": "name at least one zone"},
        "refused.unknown_zone": {
            "vi": "không có vùng {name} (các vùng: {known})",
            "en": "unknown zone {name} (zones: {known})",
        },
        "refused.unknown_sensor": {
            "vi": "không có cảm biến {name} (các cảm biến: {known})",
            "en": "unknown sensor {name} (sensors: {known})",
        },
        "refused.unknown_keypad": {
            "vi": "không có bàn phím {name} (các bàn phím: {known})",
            "en": "unknown keypad {name} (keypads: {known})",
        },
        "refused.unknown_detector": {
            "vi": "không có đầu dò flycam {name} (các đầu dò: {known})",
            "en": "unknown drone detector {name} (detectors: {known})",
        },
        "refused.bad_mode": {
            "vi": "chế độ là away, home hoặc night",
            "en": "the mode is away, home or night",
        },
        "refused.no_code": {"vi": "chưa nhập mã", "en": "no code given"},
        "refused.wrong_code": {"vi": "sai mã", "en": "wrong code"},
        "refused.busy": {
            "vi": "quá nhiều lệnh đang chờ kiểm tra mã, hãy thử lại sau",
            "en": "too many commands waiting for their code check, try again later",
        },
        "refused.locked_out": {
            "vi": "đang khóa vì nhập sai mã nhiều lần, đến {until}",
            "en": "locked out after wrong codes, until {until}",
        },
        "refused.not_permitted": {
            "vi": "{user} không được phép điều khiển {zones}",
            "en": "{user} may not operate {zones}",
        },
        "refused.arm_failed": {"vi": "{why}", "en": "{why}"},
        "refused.not_simulated": {
            "vi": "lệnh mô phỏng cần bộ điều khiển chạy với --simulate",
            "en": "simulation commands need a daemon started with --simulate",
        },
        "refused.no_virtual_clock": {
            "vi": "tiến đồng hồ cần đồng hồ ảo: chạy bộ điều khiển với --simulate --clock ISO8601",
            "en": "advance needs a virtual clock: start the daemon with --simulate --clock ISO8601",
        },
        "refused.bad_state": {
            "vi": "trạng thái là active hoặc inactive",
            "en": "the state is active or inactive",
        },
        "refused.bad_count": {
            "vi": "số xung là số nguyên từ 1 đến 1000",
            "en": "the count is a whole number from 1 to 1000",
        },
        "refused.bad_interval": {
            "vi": "khoảng cách giữa các xung là từ 0.001 đến 3600 giây",
            "en": "the interval is a number of seconds from 0.001 to 3600",
        },
        "refused.bad_keys": {
            "vi": "hãy nhập 1 đến 64 phím, ví dụ 1234#",
            "en": "give 1 to 64 keys, e.g. 1234#",
        },
        "refused.no_such_key": {
            "vi": "bàn phím {keypad} không có phím {name} (các phím: {known})",
            "en": "keypad {keypad} has no key {name} (keys: {known})",
        },
        "refused.bad_line": {
            "vi": "hãy đưa một dòng dài tối đa 4096 ký tự",
            "en": "give one line of at most 4096 characters",
        },
        "refused.bad_duration": {
            "vi": "thời lượng {value} không hợp lệ: dùng số kèm đơn vị, như 30s, 4m, 1h hoặc 1h30m",
            "en": "bad duration {value}: use a number with a unit, like 30s, 4m, 1h or 1h30m",
        },
        "refused.advance_too_long": {
            "vi": "mỗi lần chỉ tiến đồng hồ ảo tối đa {days} ngày",
            "en": "advance the virtual clock by at most {days} days at a time",
        },
        "refused.bad_switch": {"vi": "hãy chọn on hoặc off", "en": "say on or off"},
    }
)


def refusal(lang: str, reason: str, **fields: Any) -> ControlError:
    """The ControlError for `reason` (a key above, without `refused.`), in `lang`."""
    what = texts.render(lang, f"refused.{reason}", **fields)
    return ControlError(texts.render(lang, "refused", what=what), reason=reason)
