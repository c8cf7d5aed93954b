"""Writing one section of benchmarks/RESULTS.md in place, leaving the others as they are."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(heading: str, section: str, results: Path = RESULTS) -> None:
    """Put ``section`` (which starts with ``heading``) where the section of that heading is, or at the end."""
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results.write_text(text, encoding="utf-8")
    print(f"wrote {results}")
