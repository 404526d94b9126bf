"""Site ids and their labels, as a user may see them."""

from __future__ import annotations

from django.db import connection

from aimonitor.access import ALL_SITES, visible_site_ids
from aimonitor.models import RunLog, SiteAccess, SiteName


def known_site_ids() -> list[int]:
    """Every site id that appears anywhere: in calls, in site names or in access grants.

    The distinct site ids of ai_run_logs come from a loose index scan (one index
    probe per site) rather than a DISTINCT over millions of rows.
    """
    table = RunLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE sites AS (
                (SELECT site_id FROM "{table}" ORDER BY site_id LIMIT 1)
                UNION ALL
                SELECT (SELECT site_id FROM "{table}" WHERE site_id > sites.site_id
                        ORDER BY site_id LIMIT 1)
                FROM sites WHERE sites.site_id IS NOT NULL
            )
            SELECT site_id FROM sites WHERE site_id IS NOT NULL
            """
        )
        ids = {row[0] for row in cursor.fetchall()}
    ids.update(SiteName.objects.values_list("site_id", flat=True))
    for granted in SiteAccess.objects.values_list("site_ids", flat=True):
        ids.update(granted)
    return sorted(ids)


def site_choices(user) -> list[tuple[int, str]]:
    """``[(site_id, label)]`` of the sites ``user`` may see, for selectors."""
    site_ids = visible_site_ids(user)
    if site_ids is ALL_SITES:
        site_ids = known_site_ids()
    labels = SiteName.objects.labels(site_ids)
    return [(site_id, labels[site_id]) for site_id in site_ids]
