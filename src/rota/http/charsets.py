"""The byte sets of RFC 9110's grammar that rota's checks translate against.

A check is `value.translate(None, SET)`: the bytes left over are the ones outside the set,
so an empty result means valid, in one pass in C. Shared by the head rules
(rota.http.rules), the trailer sections (rota.http.trailers) and the forwarded head
(rota.http.forward).
"""

from __future__ import annotations

from typing import Final

DIGITS: Final = b"0123456789"
ALPHA: Final = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# RFC 9110 5.6.2: tchar.
TCHAR: Final = ALPHA + DIGITS + b"!#$%&'*+-.^_`|~"
# RFC 9110 5.5: field-value bytes are VCHAR, obs-text, SP, HTAB. llhttp already refuses the
# rest; re-checking is one translate over the joined values and keeps these rules correct on
# their own (the response side, a lenient parser setting).
VALUE_CHARS: Final = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t"
# RFC 9110 5.6.3: optional whitespace.
OWS: Final = b" \t"
