"""Site ids and their labels, as a user may see them."""

from __future__ import annotations

from aimonitor.access import ALL_SITES, visible_site_ids
from aimonitor.models import RunLog, SiteAccess, SiteName
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
    site_ids = visible_site_ids(user)
    if site_ids is ALL_SITES:
        site_ids = known_site_ids()
    labels = SiteName.objects.labels(site_ids)
    choices = [(site_id, labels[site_id]) for site_id in site_ids]
    user._site_choices = choices
    return list(choices)
