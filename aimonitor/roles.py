"""The three roles (Django groups) and what each may do (SPEC.md §5), built from the
permission names of ``aimonitor.permissions``."""

from __future__ import annotations

from aimonitor.permissions import ADMIN_PERMISSIONS, OPERATOR_PERMISSIONS

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

_OPERATOR_PERMS = list(OPERATOR_PERMISSIONS)
_ADMIN_PERMS = _OPERATOR_PERMS + [
    *ADMIN_PERMISSIONS,
    # The Django admin: raw records, site names and access, the audit trail.
    "aimonitor.view_runlog",
    "aimonitor.view_triggerjob",
    "aimonitor.view_cacheentry",
    "aimonitor.view_auditevent",
    "aimonitor.view_sitename",
    "aimonitor.add_sitename",
    "aimonitor.change_sitename",
    "aimonitor.view_siteaccess",
    # Notifications (SPEC.md §10): channels and rules edited by admins.
    *(
        f"alerts.{op}_{model}"
        for op in ("view", "add", "change", "delete")
        for model in ("channel", "alertrule")
    ),
    "alerts.view_incident",
    "alerts.view_delivery",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: [],
    OPERATOR: _OPERATOR_PERMS,
    ADMIN: _ADMIN_PERMS,
}
# Admins use the Django admin, which needs is_staff.
STAFF_ROLES = {ADMIN}


def sync_role_groups(group_model, permission_model) -> None:
    """Create the role groups and give each exactly its permissions."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            # A later app's permissions do not exist yet while an earlier migration runs;
            # that app's own migration syncs the groups again (alerts 0002).
            found = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if found is not None:
                wanted.append(found)
        group.permissions.set(wanted)
