"""Day and hour key parts for a receive time, in the configured time zone."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from helpers.keys import DAY_FORMAT, HOUR_FORMAT


class DayClock:
    """Maps epoch seconds to (``YYYYMMDD``, ``YYYYMMDDHH``) in one time zone.

    The answer only changes at an hour boundary, so it is cached for the hour:
    the hot path costs two comparisons.
    """

    def __init__(self, timezone: str | None = None) -> None:
        # None: the host's local zone, as the dashboard that reads the keys computes dates.
        self.tz: dt.tzinfo | None = zoneinfo.ZoneInfo(timezone) if timezone else None
        self._start = 0.0
        self._end = -1.0
        self._keys = ("", "")

    def keys(self, now: float) -> tuple[str, str]:
        if not self._start <= now < self._end:
            local = dt.datetime.fromtimestamp(now, self.tz) if self.tz else \
                dt.datetime.fromtimestamp(now).astimezone()
            into_hour = local.minute * 60 + local.second + local.microsecond / 1e6
            self._start = now - into_hour
            self._end = self._start + 3600
            self._keys = (local.strftime(DAY_FORMAT), local.strftime(HOUR_FORMAT))
        return self._keys
