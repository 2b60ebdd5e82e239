"""Row ids written as text (a path segment, a comma-separated query, a header).

``str.isdigit`` is no test for them: it accepts "²" (``int`` then raises) and "٣" (``int`` reads
it as 3), and ``int`` refuses strings of more than 4300 digits.  Here only ASCII digits count,
and no more of them are read than the largest id has."""

from __future__ import annotations

from store.repositories import MAX_ID, valid_id

MAX_ID_DIGITS = len(str(MAX_ID))


def is_digits(text: str) -> bool:
    """``text`` is a non-empty run of ASCII digits 0-9."""
    return text.isascii() and text.isdigit()


def parse_id(text: str) -> int | None:
    """The row id ``text`` writes, or ``None`` when it writes none: not ASCII digits, or a number
    outside the id range (``store.repositories.valid_id``)."""
    if not is_digits(text):
        return None
    significant = text.lstrip("0")
    if len(significant) > MAX_ID_DIGITS:
        return None
    value = int(significant or "0")
    return value if valid_id(value) else None


def parse_size(text: str | None) -> int | None:
    """A byte count from a header such as Content-Length, or ``None`` when it is not one.  Too many
    digits to read is an answer too: more than any limit, so ``2**63``."""
    if text is None or not is_digits(text):
        return None
    significant = text.lstrip("0")
    return 2**63 if len(significant) > 18 else int(significant or "0")


def shorten(text: object, limit: int = 40) -> str:
    """``text`` for a message: cut to ``limit`` characters."""
    s = text if isinstance(text, str) else repr(text)
    return s if len(s) <= limit else s[:limit] + "…"
