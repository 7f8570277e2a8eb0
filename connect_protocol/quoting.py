"""One double-quoted string form that TOML and YAML both read back exactly.

Config files (a speaker's TOML) and cloud-init seeds (YAML) carry names and SSIDs
that people type: emoji, quotes, accents.  JSON's own quoting is not enough: it
writes characters outside the Basic Multilingual Plane as surrogate pairs, which
TOML refuses and YAML turns into two broken characters.  Here every character that
is not printable ASCII is ``\\uXXXX`` or ``\\UXXXXXXXX``, escapes both formats share.
"""

from __future__ import annotations


def quoted(text: str) -> str:
    """``text`` as a TOML basic string / YAML double-quoted scalar; ValueError for a
    lone surrogate (not a character in either format)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{text!r} holds a lone surrogate, not a character")
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
