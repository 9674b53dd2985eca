"""docs/benchmarks.md is shared by every benchmark: each owns one marked block and replaces only it."""
from __future__ import annotations

from pathlib import Path


def replace_block(report: Path, begin: str, end: str, body: str, *, after: str | None = None) -> None:
    """Write `begin`, `body`, `end` in place of the block between those markers; a new block goes after
    the last occurrence of `after` (e.g. the end marker of a sibling block) or at the end."""
    report = Path(report)
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    block = f"{begin}\n{body.strip(chr(10))}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    elif after and after in text:
        at = text.rindex(after) + len(after)
        text = text[:at] + f"\n\n{block}" + text[at:]
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    report.write_text(text, encoding="utf-8")
