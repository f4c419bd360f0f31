"""What every study report starts with: the settings it ran under and the time per part."""

from __future__ import annotations

from replab.studies.study import Part, StudyRun, Sweep


def settings_of(s: StudyRun, parts: list[Part | Sweep]) -> dict[str, str]:
    runs = [p for p in parts if isinstance(p, Part)]
    data = list(dict.fromkeys(p.data for p in runs))
    device = runs[0].summaries[0]["device"] if runs else ""
    return {
        "data": " · ".join(data),
        "device": device,
        "profile": "quick (a small, fast check; not the report's settings)" if s.quick else "full (the report's settings)",
        "seeds": ", ".join(map(str, s.seeds)),
        "overrides": ", ".join(s.user_overrides) or "none (the bundled recipes as they are)",
        "study folder": str(s.folder),
    }


def timings_of(parts: list[Part | Sweep]) -> list[tuple[str, str, float]]:
    return [(p.key, p.title, p.seconds) for p in parts]
