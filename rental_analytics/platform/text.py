"""Text from data made safe to show: one line, valid Unicode, and no character a terminal or a mail reader acts on."""

from __future__ import annotations

# Control characters (C0, DEL, C1), the line and paragraph separators, and the bidirectional overrides and
# isolates, which reorder what follows them on screen so that one value can show as another's text.
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F)]
_CONTROLS += range(0x2066, 0x206A)
_ESCAPES: dict[int, str] = {
    **{code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _CONTROLS},
    # Lone surrogates, which no encoder takes; a byte that was not UTF-8 (a file name read with Python's
    # surrogateescape) is shown as that byte.
    **{code: f"\\u{code:04x}" for code in range(0xD800, 0xE000)},
    **{code: f"\\x{code - 0xDC00:02x}" for code in range(0xDC80, 0xDD00)},
}


def printable(text: object) -> str:
    r"""The text with every control character, line break and undecodable byte written as a visible escape.

    A value with a line break in it never starts a line of its own in a summary, a notification or a log, and a
    file name that was not UTF-8 shows its bytes (`notes\xff.txt`) instead of failing the write that shows it.
    """
    return str(text).translate(_ESCAPES)
