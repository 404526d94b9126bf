"""The one scope: which sites a request may see, as a value.

``Scope.for_user(user)`` is the one place a person becomes a scope (their
``SiteAccess``: a list of site ids, or every site). Everything that reads the AI
tables takes a ``Scope``: ``Model.objects.visible_to(scope)``, the figures
(``aimonitor.figures``) and the summaries (``aimonitor.summaries``). A page narrows
it to the site chosen in its filter with ``scope.narrow(site)``; ``scope.require(site)``
is the one 403 for a site outside the person's sites.

A scope is frozen: narrowing returns a new one, and the one cached on the user for
the request is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from aimonitor.models.access import SiteAccess


@dataclass(frozen=True)
class Scope:
    """The site ids in scope, sorted; ``None`` for every site (``is_all_sites``)."""

    site_ids: tuple[int, ...] | None

    @classmethod
    def everything(cls) -> Scope:
        """Every site: the budget (global by definition), the notifier, /metrics."""
        return cls(None)

    @classmethod
    def nothing(cls) -> Scope:
        return cls(())

    @classmethod
    def of_sites(cls, site_ids) -> Scope:
        return cls(tuple(sorted({int(site_id) for site_id in site_ids})))

    @classmethod
    def for_user(cls, user) -> Scope:
        """The sites ``user`` may see: none when signed out or inactive, every site for a
        superuser or a ``SiteAccess`` with ``all_sites``, else its list.

        Cached on the user object, so one request asks the database once.
        """
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return cls.nothing()
        cached = getattr(user, "_aimonitor_scope", None)
        if cached is not None:
            return cached
        if user.is_superuser:
            scope = cls.everything()
        else:
            access = SiteAccess.objects.filter(user=user).first()
            if access is None:
                scope = cls.nothing()
            elif access.all_sites:
                scope = cls.everything()
            else:
                scope = cls.of_sites(access.site_ids)
        user._aimonitor_scope = scope
        return scope

    @property
    def is_all_sites(self) -> bool:
        return self.site_ids is None

    @property
    def site_id_list(self) -> list[int] | None:
        """The site ids as a list for a SQL parameter (``= ANY(%s)``); None: every site."""
        return None if self.site_ids is None else list(self.site_ids)

    def sees(self, site_id: int) -> bool:
        return self.site_ids is None or int(site_id) in self.site_ids

    def require(self, site_id: int) -> int:
        """``site_id`` if it is in scope; otherwise 403 (the one check of a chosen site)."""
        if not self.sees(site_id):
            raise PermissionDenied(
                _("You do not have access to site %(site)s.") % {"site": site_id}
            )
        return site_id

    def narrow(self, site_id: int | None) -> Scope:
        """The scope of one chosen site (``None``: unchanged). A site outside this scope
        gives an empty scope; pages ``require`` it first to answer 403."""
        if site_id is None:
            return self
        return Scope((int(site_id),)) if self.sees(site_id) else Scope.nothing()
