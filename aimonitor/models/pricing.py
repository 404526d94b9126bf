"""Prices per app type (read by ``aimonitor/pricing.py``)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class AppPrice(models.Model):
    """What 1,000 tokens of one app type cost; apps without one use
    AIMONITOR_TOKEN_PRICE_PER_1K (SPEC.md §8)."""

    app_type = models.CharField(_("app type"), max_length=64, unique=True)
    price_per_1k = models.DecimalField(
        _("price per 1,000 tokens"),
        max_digits=12,
        decimal_places=6,
        validators=[MinValueValidator(0)],
    )

    class Meta:
        ordering = ["app_type"]
        verbose_name = _("app price")
        verbose_name_plural = _("app prices")

    def __str__(self) -> str:
        return f"{self.app_type}: {self.price_per_1k} / 1k"
