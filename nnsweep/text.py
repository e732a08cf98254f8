"""Text from a sweep file or a results folder, made safe to print on a terminal.

A description, a folder name or a failed trial's error message is data, not instructions to
the terminal: an ESC starts an escape sequence that can recolour, retitle or rewrite the
screen, a carriage return overwrites the line already printed. `terminal_safe` shows such
characters as visible escapes instead, so what the user sees is what the text holds.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (U+009B alone starts an escape sequence on some terminals),
# and lone surrogates, which no terminal encoding can print.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def terminal_safe(text: str) -> str:
    """`text` with every control character written as a visible escape (ESC as `\\x1b`, a
    newline as `\\n`): printed, it stays on one line and changes nothing on the screen.
    Ordinary unicode is kept as it is; so is a backslash, so the result reads naturally but
    is not meant to be parsed back."""
    return _UNPRINTABLE.sub(_visible, text)
