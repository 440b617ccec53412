"""Alerts: late feeds, volume drops, held batches, failed reconciliations, late 双公示 records and failed
Airflow tasks, stored in ``meta/alerts`` and sent once to every channel (webhook, e-mail).

- :func:`check` finds what is wrong now (govlake.alerts._detect), raises a new alert for a condition
  with no live one, records the others as seen again, resolves the alerts whose condition cleared,
  then sends the open alerts that a channel has not taken yet (govlake.alerts._notify).
- :func:`raise_alert` stores and sends one condition found elsewhere (an Airflow callback).
- :func:`acknowledge` and :func:`resolve` are the operator's steps (who, when, why recorded).

docs/alerts.md describes the kinds, thresholds (``alerts:`` in catalog/defaults.yml) and channels
(GOVLAKE_ALERT_* settings).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from govlake.alerts._detect import DETECTED, KINDS, Condition, detect
from govlake.alerts._notify import Delivery, channels, notify
from govlake.alerts._store import (
    ACKNOWLEDGED,
    LIVE,
    OPEN,
    RESOLVED,
    Alert,
    AlertError,
    list_alerts,
    reconcile_rows,
    step_rows,
    write_steps,
)
from govlake.catalog import get_catalog
from govlake.config import Settings


@dataclass(frozen=True)
class CheckResult:
    """What one check did."""

    raised: list[Alert]
    seen: list[Alert]
    resolved: list[Alert]
    deliveries: list[Delivery]
    channels: list[str]
    open: list[Alert] = field(default_factory=list)
    """Every alert still open or acknowledged after the check."""

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def check(settings: Settings, *, run_id: str, now: dt.datetime | None = None) -> CheckResult:
    """Detect, store (raise / seen / resolve when cleared) and notify; see the module docstring."""
    found = detect(settings, get_catalog(settings.catalog_dir))
    at = _now(now)
    touched = write_steps(settings, lambda done: reconcile_rows(done, found, resolvable=DETECTED, at=at,
                                                                run_id=run_id), run_id=run_id)
    firsts = {a.alert_id for a in touched if a.steps == 1}
    live = list_alerts(settings, states=LIVE)
    sent = notify(settings, live, run_id=run_id)
    return CheckResult(raised=[a for a in touched if a.alert_id in firsts],
                       seen=[a for a in touched if a.alert_id not in firsts and a.state in LIVE],
                       resolved=[a for a in touched if a.state == RESOLVED], deliveries=sent,
                       channels=[c.name for c in channels(settings.alert_channels)], open=live)


def raise_alert(settings: Settings, condition: Condition, *, run_id: str,
                now: dt.datetime | None = None) -> tuple[Alert, list[Delivery]]:
    """Store ``condition`` (a new alert, or seen again when its key has a live one) and send it."""
    at = _now(now)
    touched = write_steps(settings, lambda done: reconcile_rows(done, [condition], resolvable=(), at=at,
                                                                run_id=run_id), run_id=run_id)
    return touched[0], notify(settings, touched, run_id=run_id)


def acknowledge(settings: Settings, alert_id: str, *, by: str, why: str, run_id: str,
                now: dt.datetime | None = None) -> Alert:
    """Acknowledge an open alert: someone is on it; it is not sent again, and still resolved when cleared."""
    return _step(settings, alert_id, "ack", by=by, why=why, run_id=run_id, now=now)


def resolve(settings: Settings, alert_id: str, *, by: str, why: str, run_id: str,
            now: dt.datetime | None = None) -> Alert:
    """Resolve an open or acknowledged alert by hand."""
    return _step(settings, alert_id, "resolve", by=by, why=why, run_id=run_id, now=now)


def _step(settings: Settings, alert_id: str, action: str, *, by: str, why: str, run_id: str,
          now: dt.datetime | None) -> Alert:
    at = _now(now)
    return write_steps(settings, lambda done: step_rows(done, alert_id, action, by=by, why=why, at=at,
                                                        run_id=run_id), run_id=run_id)[0]


__all__ = ["ACKNOWLEDGED", "DETECTED", "KINDS", "LIVE", "OPEN", "RESOLVED", "Alert", "AlertError", "CheckResult",
           "Condition", "Delivery", "acknowledge", "check", "detect", "list_alerts", "raise_alert", "resolve"]
