"""Site ids and their labels, as a user may see them."""

from __future__ import annotations

from aimonitor.models import RunLog, SiteAccess, SiteName
from aimonitor.scope import Scope
from aimonitor.skipscan import distinct_values


def known_site_ids() -> list[int]:
    """Every site id that appears anywhere: in calls, in site names or in access grants."""
    ids = set(distinct_values(RunLog, "site_id"))
    ids.update(SiteName.objects.values_list("site_id", flat=True))
    for granted in SiteAccess.objects.values_list("site_ids", flat=True):
        ids.update(granted)
    return sorted(ids)


def site_choices(user) -> list[tuple[int, str]]:
    """``[(site_id, label)]`` of the sites ``user`` may see, for selectors.

    Kept on the user object: the header's picker and a list's site filter draw the same
    choices in one request."""
    cached = getattr(user, "_site_choices", None)
    if cached is not None:
        return list(cached)
    scope = Scope.for_user(user)
    site_ids = known_site_ids() if scope.is_all_sites else list(scope.site_ids)
    labels = SiteName.objects.labels(site_ids)
    choices = [(site_id, labels[site_id]) for site_id in site_ids]
    user._site_choices = choices
    return list(choices)
