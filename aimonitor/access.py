"""The one scoping point: which sites a user may see.

Every query of the AI tables goes through ``visible_to(user)`` on their
querysets (``aimonitor.models.SiteScopedQuerySet``), which asks this module.
Views use ``require_site`` to turn a ``site`` parameter into a checked id.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

ALL_SITES = None  # visible_site_ids() returns this for "every site"


def visible_site_ids(user) -> list[int] | None:
    """The site ids ``user`` may see, or ``ALL_SITES`` (None) for every site.

    Cached on the user object, so one request asks the database once.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    cached = getattr(user, "_aimonitor_site_ids", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        site_ids = ALL_SITES
    else:
        from aimonitor.models import SiteAccess

        access = SiteAccess.objects.filter(user=user).first()
        if access is None:
            site_ids = []
        elif access.all_sites:
            site_ids = ALL_SITES
        else:
            site_ids = sorted(set(access.site_ids))
    user._aimonitor_site_ids = site_ids
    return site_ids


def can_see_site(user, site_id: int) -> bool:
    site_ids = visible_site_ids(user)
    return site_ids is ALL_SITES or site_id in site_ids


def require_site(user, site_id: int) -> int:
    """Return ``site_id`` if ``user`` may see it; otherwise 403."""
    if not can_see_site(user, site_id):
        raise PermissionDenied(_("You do not have access to site %(site)s.") % {"site": site_id})
    return site_id
