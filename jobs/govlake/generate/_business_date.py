"""The demo city's as-of date recorded as the lake's business date (var/business_date)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from govlake.config import Settings


def record_business_date(settings: Settings, city: Path, as_of: dt.date | str) -> str:
    """Record ``as_of`` in ``var/business_date`` when ``city`` is the lake's inbox (``settings.city``),
    so every later command without GOVLAKE_AS_OF works on the city's date; returns what to tell the
    user. A city written elsewhere leaves the lake's business date alone."""
    day = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(as_of)
    if Path(city).resolve() != settings.city.resolve():
        return (f"business date not recorded: {city} is not the lake's inbox ({settings.city}); "
                f"set GOVLAKE_AS_OF={day.isoformat()} to work on the city's date")
    path = settings.business_date_file
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(day.isoformat() + "\n", encoding="utf-8")
    scratch.replace(path)
    return (f"business date {day.isoformat()} recorded in {path}: govlake uses it until GOVLAKE_AS_OF says "
            "otherwise (delete the file to go back to today)")
