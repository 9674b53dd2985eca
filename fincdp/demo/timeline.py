"""Times on the business dates, in Asia/Shanghai (+08:00), spread over the day like real activity."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np

OFFSET = "+08:00"
_SHANGHAI = np.timedelta64(8, "h")

# Share of activity per local hour.
OFFICE = np.array([0, 0, 0, 0, 0, 0, 0, 1, 4, 9, 11, 10, 6, 7, 10, 10, 9, 7, 4, 2, 1, 1, 0, 0], float)
ONLINE = np.array([2, 1, .6, .4, .3, .4, 1, 2.5, 4.5, 6, 6.5, 6.5, 5, 5.5, 6.5, 6.5, 6, 5.5, 5, 5.5, 6, 6, 5, 3.5],
                  float)
CALLS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 11, 10, 4, 6, 10, 10, 9, 7, 2, 0, 0, 0, 0, 0], float)


class Clock:
    """The `days` business dates ending at `business_date`."""

    def __init__(self, business_date: date, days: int):
        if days < 1:
            raise ValueError("days must be at least 1")
        self.dates = [business_date - timedelta(days=days - 1 - i) for i in range(days)]
        self.day0 = np.datetime64(self.dates[0].isoformat(), "s")

    @property
    def iso_dates(self) -> list[str]:
        return [d.isoformat() for d in self.dates]

    def split(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Business-date index for n records, uniformly."""
        return rng.integers(0, len(self.dates), n)

    def times(self, rng: np.random.Generator, day_idx: np.ndarray, profile: np.ndarray = OFFICE,
              latest_hour: int = 24) -> np.ndarray:
        """Local times (datetime64[s], naive Shanghai) on the given date indices."""
        p = profile[:latest_hour] / profile[:latest_hour].sum()
        n = len(day_idx)
        hours = rng.choice(len(p), n, p=p)
        seconds = np.asarray(day_idx, np.int64) * 86400 + hours * 3600 + rng.integers(0, 3600, n)
        return self.day0 + seconds.astype("timedelta64[s]")

    def stamps(self, t: np.ndarray) -> list[str]:
        """Like `iso` for times on the business dates, from a table of the day's seconds (fast)."""
        offset = (t - self.day0).astype(np.int64)
        if len(offset) and (offset.min() < 0 or offset.max() >= 86400 * len(self.dates)):
            return iso(t)
        if not hasattr(self, "_table"):
            clock = [f"T{h:02d}:{m:02d}:{s:02d}{OFFSET}" for h in range(24) for m in range(60) for s in range(60)]
            self._table = [d + c for d in self.iso_dates for c in clock]
        table = self._table
        return [table[x] for x in offset.tolist()]

    def before(self, rng: np.random.Generator, t: np.ndarray, max_days: int) -> np.ndarray:
        """Earlier times: up to max_days before t (at least a minute)."""
        back = rng.integers(60, max_days * 86400, len(t))
        return t - back.astype("timedelta64[s]")


def iso(t: np.ndarray) -> list[str]:
    """ISO 8601 with the +08:00 offset: 2026-11-25T10:00:00+08:00."""
    return [s + OFFSET for s in np.datetime_as_string(t, unit="s").tolist()]


def epoch(t: np.ndarray) -> list[int]:
    """Unix seconds of naive Shanghai times."""
    return ((t - _SHANGHAI).astype("datetime64[s]").astype(np.int64)).tolist()
