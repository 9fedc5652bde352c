"""The DC-09 key, from a file only root (and the daemon's group) may read.

Receivers differ in how a key is written: most (and the standard's own examples) write the key
as hex digits, 32 of them for AES-128; pysiaalarm and Home Assistant's SIA integration take the
characters typed as the key's bytes (16 characters for AES-128). `dc09.key_format` says which:
`hex` decodes the file's first line from hex, `text` takes its characters as they are. The key
is never logged or printed, not even in part.
"""

from __future__ import annotations

import os
import stat

from controller.errors import OfficeGuardError

LENGTHS = (16, 24, 32)  # AES-128/192/256


class Dc09KeyError(OfficeGuardError):
    """The key file cannot be used (missing, open to others, or not a key)."""


def read_key(path: str, key_format: str) -> bytes:
    try:
        st = os.stat(path)
        with open(path, encoding="ascii") as f:
            line = f.readline().strip()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or "not ASCII text"
        raise Dc09KeyError(f"cannot read the DC-09 key file {path}: {why}") from e
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o037 or st.st_uid != 0 and st.st_uid != os.geteuid():
        raise Dc09KeyError(
            f"the DC-09 key file {path} has mode {mode:04o} (or another owner): it must be owned"
            f" by root and readable by root and the officeguard group only: chmod 0640 {path}"
        )
    if key_format == "hex":
        try:
            key = bytes.fromhex(line)
        except ValueError:
            raise Dc09KeyError(
                f"the DC-09 key in {path} is not hex digits (key_format: hex)"
            ) from None
    else:
        key = line.encode("ascii")
    if len(key) not in LENGTHS:
        digits = "hex digits" if key_format == "hex" else "characters"
        want = ", ".join(str(n * 2 if key_format == "hex" else n) for n in LENGTHS)
        raise Dc09KeyError(
            f"the DC-09 key in {path} has the wrong length: {want} {digits} for AES-128/192/256"
            f" (key_format: {key_format})"
        )
    return key
