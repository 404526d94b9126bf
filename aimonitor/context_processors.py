from __future__ import annotations

from django.conf import settings

from aimonitor.sites import site_choices


def console(request) -> dict:
    """What the base layout needs on every page: the user's sites and the nav's alert count."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from aimonitor.listing import capped_count
    from aimonitor.models import RunLog
    from aimonitor.scope import Scope

    # Capped as every list count is: "10,000+" rather than an exact count of millions.
    pending = capped_count(RunLog.objects.visible_to(Scope.for_user(user)).pending_alerts())
    choices = site_choices(user)
    return {
        "site_choices": choices,
        "site_labels": dict(choices),
        "selected_site": request.GET.get("site", ""),
        "nav_pending_alerts": pending,
        "token_price_per_1k": settings.TOKEN_PRICE_PER_1K,
        "currency": settings.CURRENCY,
    }
