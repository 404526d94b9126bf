"""What tokens cost (SPEC.md §8): a price per 1,000 tokens per app type.

An app's price is its ``AppPrice`` (edited in the admin), else the global
AIMONITOR_TOKEN_PRICE_PER_1K; with neither its cost is unknown (None, shown as "—").
A total over several apps is unknown as soon as one of them has no price:
a partial sum would read as the whole bill.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from aimonitor.models import AppPrice


def price_list() -> dict[str, Decimal]:
    """``{app_type: price per 1,000 tokens}`` of the apps priced in the admin (one query)."""
    return dict(AppPrice.objects.values_list("app_type", "price_per_1k"))


def price_of(app_type: str, prices: dict[str, Decimal]) -> Decimal | None:
    if app_type in prices:
        return prices[app_type]
    fallback = settings.TOKEN_PRICE_PER_1K
    return None if fallback is None else Decimal(fallback)


def cost(tokens: int, price: Decimal | None) -> float | None:
    """``tokens`` at ``price`` per 1,000, to 4 decimals (None when the price is unknown)."""
    if price is None:
        return None
    return round(float(Decimal(int(tokens)) * price / 1000), 4)


def total_cost(tokens_by_app: dict[str, int], prices: dict[str, Decimal]) -> float | None:
    """The cost of every app's tokens, or None when one of the apps has no price."""
    if not tokens_by_app and settings.TOKEN_PRICE_PER_1K is None:
        return None
    total = Decimal(0)
    for app_type, tokens in tokens_by_app.items():
        price = price_of(app_type, prices)
        if price is None:
            return None
        total += Decimal(int(tokens)) * price / 1000
    return round(float(total), 4)


def currency() -> str:
    return settings.CURRENCY
