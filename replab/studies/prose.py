"""A study's report text, kept as prose: the templates at the bottom of each ``study_*.py``.

A template is written as it reads: paragraphs separated by a blank line, each wrapped over as
many lines as the source needs (a paragraph's lines are joined by one space). Its ``{name}``
and ``{name:.4f}`` placeholders are ``str.format`` fields the study's code fills with numbers;
a literal brace is written twice.
"""

from __future__ import annotations

import re


def paragraphs(template: str, **values: object) -> list[str]:
    """The paragraphs of ``template``, each filled with ``values``."""
    blocks = re.split(r"\n\s*\n", template.strip())
    return [" ".join(line.strip() for line in b.splitlines()).format(**values) for b in blocks]


def fill(template: str, **values: object) -> str:
    """A one-paragraph ``template`` (a sentence, a heading), filled with ``values``."""
    (text,) = paragraphs(template, **values)
    return text
