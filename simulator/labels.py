"""Label styles for the displayed options, and reading a letter-labelled answer.

Why: the DEF template numbers its options, and the parser (``culturesim.simulator.parsing``) reads
numbers. The invariance battery (``culturesim invariance``) also shows the same options
labelled with letters (``A. Favor``) or bare (the option texts alone, one per line), because a
model's answers may follow the label style rather than the content (Dominguez-Olmedo et al.,
"Questioning the Survey Responses of Large Language Models"). So that one parser still decides
every answer, a letter-labelled response is first rewritten letter by letter into the
numbers the parser knows (``Answer: B`` -> ``Answer: 2``) by :func:`letters_to_numbers`;
nothing else in the text changes, and the raw text is what the run stores.

Which letters are rewritten: an upper-case letter among the first ``k`` (``A`` .. the k-th
letter) standing alone (no letter or digit on either side, so ``B`` in ``选B`` or ``(B)`` or
``B.``, but not in ``BC`` or the abbreviation ``U.S.A``). ``A`` and ``I`` are also
English words, so they are rewritten only when no lower-case word follows them
(``A good citizen`` and ``I think`` stay as they are; ``Answer: A`` and ``A. Favor`` do not), and
``A:`` opening a line stays (the parser reads it as an answer label).
Questions on a numeric scale keep their numbers in every style (the numbers are the content).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

__all__ = ["LABEL_STYLES", "letter", "letters_to_numbers", "check_label_style"]

LABEL_STYLES = ("numbers", "letters", "text")
"""``numbers``: ``1. Favor`` (the DEF template); ``letters``: ``A. Favor``; ``text``: ``Favor``."""

_WORD_AFTER = re.compile(r" +[a-z]")
_FULL_WIDTH = {0xFF21 + i: 0x41 + i for i in range(26)}  # Ａ..Ｚ -> A..Z (as the parser folds them)


def check_label_style(labels: str) -> str:
    """``labels`` if it is a known style, else ValueError naming the choices."""
    if labels not in LABEL_STYLES:
        raise ValueError(f"Unknown label style {labels!r}; choose one of {', '.join(LABEL_STYLES)}")
    return labels


def letter(index: int) -> str:
    """0 -> ``A``, 1 -> ``B``, ... (at most 26 options take letters)."""
    if not 0 <= index < len(string.ascii_uppercase):
        raise ValueError(f"Option index {index} has no letter label (letters cover 26 options)")
    return string.ascii_uppercase[index]


@lru_cache(maxsize=64)
def _letter_re(k: int) -> re.Pattern[str]:
    last = letter(k - 1)
    return re.compile(rf"(?<![A-Za-z0-9])(?<![A-Za-z]\.)([A-{last}])(?![A-Za-z0-9])(?!\.[A-Za-z])")


def letters_to_numbers(text: str, k: int) -> str:
    """``text`` with every standalone option letter (A.. the k-th) replaced by its number."""
    if k < 1 or not text:
        return text
    pattern = _letter_re(min(k, 26))
    text = text.translate(_FULL_WIDTH)

    def swap(m: re.Match[str]) -> str:
        ch = m.group(1)
        if ch in "AI" and _WORD_AFTER.match(text, m.end()):
            return ch
        if ch == "A" and text.startswith(":", m.end()) and (m.start() == 0 or text[m.start() - 1] == "\n"):
            return ch  # "A:" opening a line is the parser's answer label, not option A
        return str(ord(ch) - ord("A") + 1)

    return pattern.sub(swap, text)
