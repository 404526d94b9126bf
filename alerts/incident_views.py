"""``/incidents/``: what the rules found, open first, each with its deliveries beside it;
``POST /incidents/<id>/ack/`` acknowledges one (``aimonitor.operations.incidents``).

Scope: an incident about a site is visible to the people who see that site; an
incident of an every-site rule (no site) only to people who see every site, since it
sums sites they may not see (``IncidentQuerySet.visible_to``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View

from aimonitor.listing import FilterForm
from aimonitor.models import SiteName
from aimonitor.operations.incidents import acknowledge_incident
from alerts.models import Delivery, Incident

PAGE_SIZE = 50
PANEL_SIZE = 10


def incidents_for(user, site: int | None = None):
    """The user's incidents (narrowed to ``site``), open first, with rule and deliveries."""
    incidents = Incident.objects.visible_to(user).select_related("rule", "acknowledged_by")
    if site is not None:
        incidents = incidents.filter(site_id=site)
    return incidents.open_first()


def open_incidents(user, site: int | None = None) -> list[dict]:
    """The dashboard's panel and JSON: the newest open incidents in scope, as plain data."""
    rows = incidents_for(user, site).open()[:PANEL_SIZE]
    return [
        {
            "id": incident.pk,
            "rule": incident.rule.name,
            "kind": incident.rule.kind,
            "site_id": incident.site_id,
            "app_type": incident.app_type,
            "value": incident.last_value,
            "threshold": incident.threshold,
            "window_minutes": incident.window_minutes,
            "started_at": incident.started_at,
            "acknowledged": incident.acknowledged_at is not None,
        }
        for incident in rows
    ]


class IncidentListView(LoginRequiredMixin, View):
    http_method_names = ["get", "head", "options"]
    template_name = "alerts/incidents.html"

    def get(self, request):
        # The lists' one filter form: a malformed site is a 400, another's site a 403.
        form = FilterForm(request.GET, user=request.user)
        if not form.is_valid():
            message = "; ".join(
                _("%(field)s: %(error)s") % {"field": name, "error": " ".join(errors)}
                for name, errors in form.errors.items()
            )
            return TemplateResponse(request, self.template_name, {"error": message}, status=400)
        form.check_site_access()
        site = form.cleaned_data["site"]
        incidents = incidents_for(request.user, site).prefetch_related(
            Prefetch(
                "deliveries",
                queryset=Delivery.objects.select_related("channel").order_by("created_at", "id"),
            )
        )
        paginator = Paginator(incidents, PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
        site_ids = {incident.site_id for incident in page.object_list} - {None}
        return TemplateResponse(
            request,
            self.template_name,
            {
                "page": page,
                "site": site,
                "incident_site_labels": SiteName.objects.labels(site_ids),
            },
        )


class IncidentAckView(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        incident, changed = acknowledge_incident(request.user, pk)
        if changed:
            messages.success(
                request,
                _("Incident #%(id)s acknowledged: no more reminders.") % {"id": incident.pk},
            )
        else:
            messages.info(
                request,
                _("Incident #%(id)s was already acknowledged; nothing changed.")
                % {"id": incident.pk},
            )
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            back = reverse("incidents:list")
        return redirect(back)
