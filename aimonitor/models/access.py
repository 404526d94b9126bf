"""Who may see which sites (``SiteAccess``), and the sites' names (``SiteName``).

``aimonitor.scope.Scope.for_user`` reads ``SiteAccess``; nothing here imports the scope.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _


class SiteAccess(models.Model):
    """Which sites a (non-superuser) user may see: a list of ids, or all."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_access"
    )
    all_sites = models.BooleanField(_("all sites"), default=False)
    site_ids = ArrayField(models.BigIntegerField(), blank=True, default=list)

    class Meta:
        verbose_name = _("site access")
        verbose_name_plural = _("site access")

    def __str__(self) -> str:
        if self.all_sites:
            return _("%(user)s: all sites") % {"user": self.user}
        sites = ", ".join(map(str, self.site_ids)) or _("no sites")
        return _("%(user)s: %(sites)s") % {"user": self.user, "sites": sites}


class SiteNameQuerySet(models.QuerySet):
    def labels(self, site_ids) -> dict[int, str]:
        """``{site_id: label}`` for the given ids; unnamed sites read "Site N"."""
        names = dict(self.filter(site_id__in=list(site_ids)).values_list("site_id", "name"))
        return {site_id: names.get(site_id) or site_label(site_id) for site_id in site_ids}


def site_label(site_id: int) -> str:
    return _("Site %(id)s") % {"id": site_id}


class SiteName(models.Model):
    site_id = models.BigIntegerField(_("site id"), primary_key=True)
    name = models.CharField(_("name"), max_length=100)

    objects = SiteNameQuerySet.as_manager()

    class Meta:
        ordering = ["site_id"]
        verbose_name = _("site name")
        verbose_name_plural = _("site names")

    def __str__(self) -> str:
        return f"{self.name} ({self.site_id})"
