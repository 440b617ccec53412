"""One notifier, pluggable channels: each open alert goes once to every configured channel.

A channel is a name and a ``send(payload)`` that raises on failure (:class:`Webhook`: HTTP POST of the
alert as JSON; :class:`Email`: one message through SMTP). Every attempt is recorded in
``meta/alert_deliveries``; an alert a channel has not taken yet (never sent, or every attempt failed)
is sent again by the next check, so a channel that is down loses nothing, and an alert it has taken is
never sent to it again. The target recorded is the host, never the URL's path (a token) or a password.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow as pa

from govlake import contracts, locks, storage
from govlake.alerts._detect import KINDS
from govlake.alerts._store import LOCK, OPEN, Alert
from govlake.config import AlertChannels, Settings
from govlake.masking import scrub_text

DELIVERIES = "alert_deliveries"
SCHEMA = contracts.ALERT_DELIVERIES


class Channel(Protocol):
    name: str
    target: str

    def send(self, payload: dict[str, Any]) -> None:
        """Deliver one alert; raise on failure."""


@dataclass(frozen=True)
class Webhook:
    url: str
    timeout: float
    name: str = "webhook"

    @property
    def target(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def send(self, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "govlake-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http(s) checked)
                response.read()
        except urllib.error.HTTPError as exc:
            raise OSError(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from None


@dataclass(frozen=True)
class Email:
    config: AlertChannels
    name: str = "email"

    @property
    def target(self) -> str:
        return f"smtp://{self.config.smtp_host}:{self.config.smtp_port}"

    def send(self, payload: dict[str, Any]) -> None:
        c = self.config
        msg = EmailMessage()
        msg["Subject"] = (f"[govlake {payload['severity']}] {payload['kind_zh']} {payload['kind_en']}: "
                          f"{payload['resource'] or payload['department'] or ''}").strip()
        msg["From"], msg["To"] = c.email_from, ", ".join(c.email_to)
        msg["Message-ID"] = f"<{payload['alert_id']}@govlake>"
        msg.set_content("\n".join([
            payload["message_zh"], payload["message_en"], "",
            f"告警 alert: {payload['alert_id']} · 级别 severity: {payload['severity']} · 首次发现 first seen: "
            f"{payload['first_seen']}",
            f"证据 evidence: {json.dumps(payload['evidence'], ensure_ascii=False, default=str)}", "",
            f"govlake alerts ack {payload['alert_id']} --by … --why …",
        ]))
        context = ssl.create_default_context()
        smtp_class = smtplib.SMTP_SSL if c.smtp_security == "ssl" else smtplib.SMTP
        kwargs: dict[str, Any] = {"context": context} if c.smtp_security == "ssl" else {}
        with smtp_class(c.smtp_host, c.smtp_port, timeout=c.timeout, **kwargs) as smtp:  # type: ignore[arg-type]
            if c.smtp_security == "starttls":
                smtp.starttls(context=context)
            if c.smtp_user and c.smtp_password:
                smtp.login(c.smtp_user, c.smtp_password)
            smtp.send_message(msg)


def channels(config: AlertChannels) -> list[Channel]:
    """The configured channels, webhook first."""
    out: list[Channel] = []
    if config.webhook_url:
        out.append(Webhook(config.webhook_url, config.timeout))
    if config.smtp_host:
        out.append(Email(config))
    return out


def payload(alert: Alert) -> dict[str, Any]:
    """What a channel sends of an alert (nothing personal: messages and evidence are masked when found)."""
    zh, en = KINDS[alert.kind]
    return {"source": "govlake", "alert_id": alert.alert_id, "kind": alert.kind, "kind_zh": zh, "kind_en": en,
            "severity": alert.severity, "state": alert.state, "resource": alert.resource,
            "department": alert.department, "message_zh": alert.message_zh, "message_en": alert.message_en,
            "evidence": json.loads(alert.evidence or "{}"), "first_seen": alert.first_seen.isoformat(),
            "last_seen": alert.last_seen.isoformat()}


@dataclass(frozen=True)
class Delivery:
    alert_id: str
    channel: str
    target: str
    ok: bool
    error: str | None


def deliveries(settings: Settings) -> list[dict]:
    table = storage.open_table(storage.table_path(settings, "meta", DELIVERIES))
    return [] if table is None else table.to_pyarrow_table().to_pylist()


def notify(settings: Settings, alerts: list[Alert], *, run_id: str,
           chosen: list[Channel] | None = None) -> list[Delivery]:
    """Send every open alert of ``alerts`` to each channel that has not taken it yet; record every attempt.

    Under the ``alerts`` lock, so two checks at once do not both send one alert. An acknowledged or
    resolved alert is not sent (someone knows already)."""
    chosen = channels(settings.alert_channels) if chosen is None else chosen
    if not chosen:
        return []
    with locks.hold(settings, LOCK):
        taken = {(r["alert_id"], r["channel"]) for r in deliveries(settings) if r["ok"]}
        done: list[Delivery] = []
        for alert in alerts:
            if alert.state != OPEN:
                continue
            for channel in chosen:
                if (alert.alert_id, channel.name) in taken:
                    continue
                try:
                    channel.send(payload(alert))
                    done.append(Delivery(alert.alert_id, channel.name, channel.target, True, None))
                except (OSError, http.client.HTTPException, smtplib.SMTPException, ValueError) as exc:
                    error = scrub_text(f"{type(exc).__name__}: {exc}"[:500])
                    done.append(Delivery(alert.alert_id, channel.name, channel.target, False, error))
        if done:
            at = dt.datetime.now(dt.UTC)
            rows = [dict(vars(d), at=at, run_id=run_id) for d in done]
            storage.write_table(storage.table_path(settings, "meta", DELIVERIES),
                                pa.Table.from_pylist(rows, schema=SCHEMA), mode="append", run_id=run_id)
    return done

