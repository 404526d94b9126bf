from __future__ import annotations

from django.conf import settings

from aimonitor.sites import site_choices


def console(request) -> dict:
    """What the base layout needs on every page: the user's sites and the nav's alert count."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from aimonitor.models import RunLog

    # Capped: the nav needs "999+" at most, not an exact count of millions.
    cap = 1000
    pending = RunLog.objects.visible_to(user).pending_alerts().values("id")[:cap].count()
    choices = site_choices(user)
    return {
        "site_choices": choices,
        "site_labels": dict(choices),
        "selected_site": request.GET.get("site", ""),
        "nav_pending_alerts": pending,
        "nav_pending_alerts_capped": pending >= cap,
        "token_price_per_1k": settings.TOKEN_PRICE_PER_1K,
        "currency": settings.CURRENCY,
    }
