"""What a notification says (SPEC.md §10), in AIMONITOR_NOTIFY_LANGUAGE.

One ``Message`` per delivery: a title, a plain-text body naming the rule, the value
against the threshold and window, the site (by name) and app, since when, and a link
to the console narrowed to it; plus the generic webhook's JSON payload. Every channel
format (``alerts.notify.channels``) is built from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from aimonitor.models import SiteName
from alerts.models import AlertRule, Delivery, Incident


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    url: str
    link_label: str
    payload: dict


def local(moment: dt.datetime | None) -> str:
    return "" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def link(incident: Incident) -> str:
    """The console page narrowed to what the incident is about."""
    rule = incident.rule
    params: dict = {}
    if incident.site_id is not None:
        params["site"] = incident.site_id
    if rule.kind == AlertRule.Kind.STUCK_JOBS:
        params["status"] = "pending"
        return f"{settings.BASE_URL}{reverse('dashboard:jobs')}?{urlencode(params)}"
    if rule.kind == AlertRule.Kind.BUDGET:
        return f"{settings.BASE_URL}{reverse('dashboard:index')}"
    if incident.app_type:
        params["app_type"] = incident.app_type
    since = incident.started_at - dt.timedelta(minutes=incident.window_minutes)
    params["since"] = timezone.localtime(since).strftime("%Y-%m-%dT%H:%M")
    page = reverse(
        "dashboard:runs"
        if rule.kind in (AlertRule.Kind.LATENCY_P95, AlertRule.Kind.SILENCE)
        else "dashboard:failures"
    )
    return f"{settings.BASE_URL}{page}?{urlencode(params)}"


def figure(kind: str, value: float) -> str:
    """A rule's value as people read it: a rate in %, a latency in ms, else a count."""
    if kind in (AlertRule.Kind.FAILURE_RATE, AlertRule.Kind.BUDGET):
        return f"{value * 100:.1f}%"
    if kind == AlertRule.Kind.LATENCY_P95:
        return _("%(ms)s ms") % {"ms": f"{value:.0f}"}
    return f"{value:g}"


def compose(delivery: Delivery) -> Message:
    incident, rule = delivery.incident, delivery.incident.rule
    with translation.override(settings.NOTIFY_LANGUAGE):
        site = (
            _("all sites")
            if incident.site_id is None
            else SiteName.objects.labels([incident.site_id])[incident.site_id]
        )
        app = incident.app_type or _("every app")
        event = {
            Delivery.Event.FIRING: _("FIRING"),
            Delivery.Event.REMINDER: _("STILL FIRING"),
            Delivery.Event.RESOLVED: _("RESOLVED"),
        }[delivery.event]
        title = _("[AI Monitor] %(event)s: %(rule)s") % {"event": event, "rule": rule.name}
        url = link(incident)
        lines = [
            title,
            _("Rule: %(rule)s (%(kind)s)") % {"rule": rule.name, "kind": rule.get_kind_display()},
            _("Value: %(value)s, threshold %(threshold)s, over the last %(minutes)s minutes")
            % {
                "value": figure(rule.kind, incident.last_value),
                "threshold": figure(rule.kind, incident.threshold),
                "minutes": incident.window_minutes,
            },
            _("Site: %(site)s · App: %(app)s") % {"site": site, "app": app},
            _("Since: %(since)s") % {"since": local(incident.started_at)},
        ]
        if incident.resolved_at:
            lines.append(_("Resolved at: %(when)s") % {"when": local(incident.resolved_at)})
        if delivery.event == Delivery.Event.REMINDER:
            lines.append(
                _("Reminder %(n)s: nobody has acknowledged it yet.") % {"n": delivery.sequence}
            )
        lines.append(_("Details: %(url)s") % {"url": url})
        text = "\n".join(lines)
        link_label = _("Open in AI Monitor")
    payload = {
        "event": delivery.event,
        "rule": rule.name,
        "kind": rule.kind,
        "site_id": incident.site_id,
        "app_type": incident.app_type or None,
        "value": incident.last_value,
        "threshold": incident.threshold,
        "window_minutes": incident.window_minutes,
        "started_at": timezone.localtime(incident.started_at).isoformat(),
        "resolved_at": timezone.localtime(incident.resolved_at).isoformat()
        if incident.resolved_at
        else None,
        "url": url,
        "text": text,
    }
    return Message(title=title, text=text, url=url, link_label=link_label, payload=payload)
