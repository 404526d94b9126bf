"""Who may see and do what, on which site: one table, generated against the URL configuration.

Every URL pattern the project serves must have a row in ``MATRIX`` (the Django admin's
namespace is covered by the rows of its three AI-table change lists, their change pages
and actions): ``test_every_url_pattern_has_a_row`` fails when a new URL is added
without one. Each row is tried as anonymous, viewer, operator, admin and superuser,
against an object (or a ``site``) of the person's own site and of another site, with
GET and with POST; the outcome must be the declared one.

Besides the status, every answer is searched for the other site's markers (its member
ids, app type, error text, site name): a person of site 1 must never see them on any
page, fragment, CSV export, JSON or admin page. And a refused POST must change nothing,
an allowed one must do what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from aimonitor.models import AuditEvent, CacheEntry, RunLog, SiteName, TriggerJob
from alerts.models import AlertRule, Channel, Delivery, Incident
from tests.conftest import make_cache, make_job, make_run, make_user

ROLES = ("anonymous", "viewer", "operator", "admin", "superuser")
OWN, OTHER = "own", "other"
SITE = {OWN: 1, OTHER: 2}
PANELS = (
    "today",
    "trend_7d",
    "app_distribution",
    "app_health",
    "budget",
    "recent_alerts",
    "incidents",
)

# What only the other site's rows carry: none of it may reach a person of site 1.
OTHER_MARKERS = (
    "app9_othersite",
    "918273645",
    "918,273,645",
    "OTHERSITE-ERROR",
    "othersite_event",
    "othersite-target",
    "Othersite Store",
)

# Outcomes ---------------------------------------------------------------------------
LOGIN = "login"  # 302 to the console's login page
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page
ABSENT = "absent"  # 200, and the other site's object is not on the page


@dataclass(frozen=True)
class Done:
    """The POST answered ``status`` and did what it says (the row changed)."""

    status: int


def everyone(outcome) -> dict:
    return dict.fromkeys(ROLES, outcome)


def logged_in(outcome, anonymous=LOGIN) -> dict:
    return {**everyone(outcome), "anonymous": anonymous}


def scoped(own, other) -> dict:
    """People of site 1 get ``own`` or ``other``; the superuser sees every site: ``own``."""
    return {
        "anonymous": LOGIN,
        **dict.fromkeys(("viewer", "operator", "admin"), (own, other)),
        "superuser": own,
    }


# The world every cell runs in ------------------------------------------------------


@dataclass
class World:
    """Rows of site 1 (own) and site 2 (other) that the pages can show or change."""

    run: dict = field(default_factory=dict)
    alert: dict = field(default_factory=dict)  # pending
    handled: dict = field(default_factory=dict)  # acknowledged, to reopen
    job: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)
    incident: dict = field(default_factory=dict)  # open, about one site
    extra: dict = field(default_factory=dict)  # the console models' (admin matrix)


@pytest.fixture
def world(db, settings) -> World:
    return build_world(settings)


def build_world(settings) -> World:
    """The rows of both sites; people are made per cell by ``person``."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = World()
    SiteName.objects.create(site_id=2, name="Othersite Store")
    for side, site in SITE.items():
        extra = (
            {"app_type": "app9_othersite", "member_id": 918273645, "session_id": "s2"}
            if side == OTHER
            else {"app_type": "app1_chat", "member_id": 111}
        )
        error = "OTHERSITE-ERROR" if side == OTHER else "own error"
        world.run[side] = make_run(site_id=site, **extra)
        world.alert[side] = make_run(site_id=site, status="failed", error_message=error, **extra)
        world.handled[side] = make_run(
            site_id=site,
            status="timeout",
            alert_status="acknowledged",
            error_message=error,
            **extra,
        )
        world.job[side] = make_job(
            site_id=site,
            status="failed",
            member_id=extra["member_id"],
            event_type="othersite_event" if side == OTHER else "consumption",
            error_message=error,
        )
        world.cache[side] = make_cache(
            site_id=site,
            cache_type=extra["app_type"],
            target_id="othersite-target" if side == OTHER else "111",
        )
        rule = AlertRule.objects.create(
            name="othersite rule" if side == OTHER else "own rule",
            kind="failure_count",
            site_id=site,
            app_type=extra["app_type"],
            threshold=1,
        )
        world.incident[side] = Incident.objects.create(
            rule=rule,
            key=f"site={site};app={extra['app_type']}",
            site_id=site,
            app_type=extra["app_type"],
            last_value=3,
            threshold=1,
            window_minutes=15,
        )
    return world


def person(role: str):
    """One person of the role on site 1 (the superuser sees every site)."""
    if role == "anonymous":
        return None
    if role == "superuser":
        return get_user_model().objects.create_superuser("root", password="x")
    return make_user(role, role, sites=[1])


# Effects of the POSTs ---------------------------------------------------------------


def alert_is(status: str, which: str = "alert"):
    def effect(world: World, side: str) -> bool:
        row = getattr(world, which)[side]
        return RunLog.objects.get(pk=row.pk).alert_status == status

    return effect


def incident_acknowledged(world: World, side: str) -> bool:
    return Incident.objects.get(pk=world.incident[side].pk).acknowledged_at is not None


def job_was_retried(world: World, side: str) -> bool:
    return TriggerJob.objects.filter(
        site_id=SITE[side], is_forced=True, event_type=world.job[side].event_type
    ).exists()


def cache_was_invalidated(world: World, side: str) -> bool:
    return CacheEntry.objects.get(pk=world.cache[side].pk).status == "invalidated"


def batch_jobs_created(world: World, side: str) -> bool:
    return TriggerJob.objects.filter(event_type="admin_batch").exists()


# Setups run in the person's own session before the POST ---------------------------


def estimate_batch(client: Client, world: World, side: str) -> dict:
    """A pending batch: in the person's own session, or in another admin's (other)."""
    owner = client
    if side == OTHER:
        owner = Client()
        owner.force_login(make_user("someone_else", "admin", sites=[1, 2]))
    response = owner.post("/batch/", {"site": 1, "app_types": ["app1_chat"], "member_ids": "5 6"})
    if response.status_code != 200:  # people who may not batch: any id will do
        return {"batch_id": "0" * 32}
    batch_id = response.context["estimate"].batch_id
    return {"batch_id": batch_id}


# The table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    route: str  # the URL pattern as the resolver spells it
    url: Callable[[World, str], str | list[str]]
    get: dict
    post: dict | None
    data: Callable[[World, str], dict] | None = None
    effect: Callable[[World, str], bool] | None = None
    setup: Callable[[Client, World, str], dict] | None = None  # extra POST data
    headers: dict = field(default_factory=dict)


def site_query(path: str, param: str = "site", **extra) -> Callable[[World, str], list[str]]:
    """Own: the page unfiltered (every site of the person) and narrowed to site 1;
    other: narrowed to site 2."""

    def urls(world: World, side: str) -> list[str]:
        narrowed = f"{path}?{urlencode({param: SITE[side], **extra})}"
        return [f"{path}?{urlencode(extra)}", narrowed] if side == OWN else [narrowed]

    return urls


def detail(path: str, attr: str) -> Callable[[World, str], str]:
    return lambda world, side: path.format(pk=getattr(world, attr)[side].pk)


def fixed(path: str) -> Callable[[World, str], str]:
    return lambda world, side: path


NO_POST = logged_in(405)
SITE_PAGE = scoped(200, 403)
DETAIL_PAGE = scoped(200, 404)
ADMIN_PAGE = {
    "anonymous": ADMIN_LOGIN,
    "viewer": ADMIN_LOGIN,
    "operator": ADMIN_LOGIN,
    "admin": (200, ABSENT),
    "superuser": 200,
}
ADMIN_CHANGE_PAGE = {**ADMIN_PAGE, "admin": (200, 302)}  # another site's row: "doesn't exist"
# Another site's row is not in the admin's queryset: "no items selected", nothing changes.
ADMIN_ACTION = {**ADMIN_PAGE, "admin": (Done(302), 302), "superuser": Done(302)}
TRIAGE = {
    "anonymous": LOGIN,
    "viewer": 403,
    "operator": (Done(302), 404),
    "admin": (Done(302), 404),
    "superuser": Done(302),
}
OPERATOR_WRITE = {**TRIAGE, "operator": (Done(302), 302), "admin": (Done(302), 302)}


def admin_rows(model: str, attr: str, action: str, effect) -> list[Row]:
    changelist = f"/admin/aimonitor/{model}/"
    return [
        Row(
            f"admin:aimonitor_{model}_changelist",
            site_query(changelist, param="site_id"),
            get=ADMIN_PAGE,
            post=ADMIN_ACTION,
            data=lambda world, side: {
                "action": action,
                "_selected_action": [getattr(world, attr)[side].pk],
            },
            effect=effect,
        ),
        Row(
            f"admin:aimonitor_{model}_change",
            lambda world, side: f"{changelist}{getattr(world, attr)[side].pk}/change/",
            get=ADMIN_CHANGE_PAGE,
            # Read-only records: a POST to the change page saves nothing.
            post={**ADMIN_PAGE, "admin": 403, "superuser": 403},
        ),
    ]


MATRIX: list[Row] = [
    Row("healthz", fixed("/healthz"), get=everyone(200), post=everyone(405)),
    # Prometheus: a bearer token, not a login (tests/test_metrics.py); unset here: 404.
    Row("metrics", fixed("/metrics"), get=everyone(404), post=everyone(405)),
    Row(
        "accounts/login/",
        fixed("/accounts/login/"),
        get=everyone(200),
        post=everyone(200),  # no credentials: the form again
    ),
    Row("accounts/logout/", fixed("/accounts/logout/"), get=everyone(405), post=everyone(302)),
    Row(
        "admin/login/",
        fixed("/admin/login/"),
        get={**everyone(200), "admin": 302, "superuser": 302},  # staff: on to the admin
        post=everyone(200),
    ),
    Row("i18n/setlang/", fixed("/i18n/setlang/"), get=everyone(302), post=everyone(302)),
    # The dashboard.
    Row("", site_query("/"), get=SITE_PAGE, post=NO_POST),
    Row("dashboard.json", site_query("/dashboard.json"), get=SITE_PAGE, post=NO_POST),
    Row(
        "dashboard/panels/<slug:panel>/",
        site_query("/dashboard/panels/{panel}/"),
        get=SITE_PAGE,
        post=NO_POST,
        headers={"HX-Request": "true"},
    ),
    # Failures (SPEC.md §8): the groups are the person's sites' only, page and JSON.
    Row("failures/", site_query("/failures/", range="24h"), get=SITE_PAGE, post=NO_POST),
    # Run logs.
    Row("runs/", site_query("/runs/"), get=SITE_PAGE, post=NO_POST),
    Row("runs/<id:pk>/", detail("/runs/{pk}/", "run"), get=DETAIL_PAGE, post=NO_POST),
    # Trigger jobs.
    Row(
        "jobs/",
        site_query("/jobs/"),
        get=SITE_PAGE,
        post=OPERATOR_WRITE,  # another site's id: "no jobs were selected", nothing retried
        data=lambda world, side: {
            "action": "retry",
            "ids": [world.job[side].pk],
            "confirm": "yes",
        },
        effect=job_was_retried,
    ),
    Row(
        "jobs/health/",
        site_query("/jobs/health/"),
        get=SITE_PAGE,
        post=NO_POST,
        headers={"HX-Request": "true"},
    ),
    Row("jobs/<id:pk>/", detail("/jobs/{pk}/", "job"), get=DETAIL_PAGE, post=NO_POST),
    Row(
        "jobs/<id:pk>/retry/",
        detail("/jobs/{pk}/retry/", "job"),
        get=logged_in(405),
        post=TRIAGE,
        effect=job_was_retried,
    ),
    # Cache.
    Row(
        "cache/",
        site_query("/cache/"),
        get=SITE_PAGE,
        post={**TRIAGE, "operator": (Done(302), 403), "admin": (Done(302), 403)},
        data=lambda world, side: {
            "site": SITE[side],
            "ids": str(world.cache[side].pk),
            "confirm": "yes",
        },
        effect=cache_was_invalidated,
    ),
    # Batch runs: the page is everyone's (recent batches of their sites); acting is admins'.
    Row(
        "batch/",
        site_query("/batch/"),
        get=logged_in(200),
        post={
            "anonymous": LOGIN,
            "viewer": 403,
            "operator": 403,
            "admin": (200, 403),
            "superuser": 200,
        },
        data=lambda world, side: {
            "site": SITE[side],
            "app_types": ["app1_chat"],
            "member_ids": "1 2 3",
        },
    ),
    Row(
        "batch/confirm/",
        fixed("/batch/confirm/"),
        get=logged_in(405),
        # Other: a batch estimated in someone else's session is unknown here.
        post={**TRIAGE, "operator": 403, "admin": (Done(302), 400), "superuser": (Done(302), 400)},
        setup=estimate_batch,
        effect=batch_jobs_created,
    ),
    Row(
        "batch/cancel/",
        fixed("/batch/cancel/"),
        get=logged_in(405),
        post={**TRIAGE, "operator": 403, "admin": (302, 400), "superuser": (302, 400)},
        setup=estimate_batch,
    ),
    # Alerts.
    Row(
        "alerts/",
        site_query("/alerts/"),
        get=SITE_PAGE,
        post=OPERATOR_WRITE,  # another site's id: "no alerts were chosen", nothing changed
        data=lambda world, side: {
            "action": "acknowledge",
            "ids": [world.alert[side].pk],
            "confirm": "yes",
        },
        effect=alert_is("acknowledged"),
    ),
    Row("alerts/new/", site_query("/alerts/new/"), get=SITE_PAGE, post=NO_POST),
    Row(
        "alerts/<id:pk>/ack/",
        detail("/alerts/{pk}/ack/", "alert"),
        get=logged_in(405),
        post=TRIAGE,
        effect=alert_is("acknowledged"),
    ),
    Row(
        "alerts/<id:pk>/ignore/",
        detail("/alerts/{pk}/ignore/", "alert"),
        get=logged_in(405),
        post=TRIAGE,
        effect=alert_is("ignored"),
    ),
    Row(
        "alerts/<id:pk>/reopen/",
        detail("/alerts/{pk}/reopen/", "handled"),
        get=logged_in(405),
        post=TRIAGE,
        effect=alert_is("pending", "handled"),
    ),
    # Incidents (the notifier's): every-site people see them all; others their sites'.
    Row("incidents/", site_query("/incidents/"), get=SITE_PAGE, post=NO_POST),
    Row(
        "incidents/<id:pk>/ack/",
        detail("/incidents/{pk}/ack/", "incident"),
        get=logged_in(405),
        post=TRIAGE,
        effect=incident_acknowledged,
    ),
    # The Django admin: the AI tables' change lists, their actions and their records.
    *admin_rows("runlog", "alert", "acknowledge_alerts", alert_is("acknowledged")),
    *admin_rows("triggerjob", "job", "retry_jobs", job_was_retried),
    *admin_rows("cacheentry", "cache", "invalidate_entries", cache_was_invalidated),
]

# Exports are the list pages with format=csv: the same people, the same sites.
EXPORTS = [
    Row(
        f"{path} (csv)",
        site_query(path, format="csv"),
        get=SITE_PAGE,
        post=None,  # a POST to the same path is its list's row above
    )
    for path in ("/runs/", "/jobs/", "/cache/", "/alerts/")
] + [
    # The time range and the triage filters on every page that shows calls.
    Row(
        f"{path} (range {' '.join(extra)})",
        site_query(path, range="7d", **extra),
        get=SITE_PAGE,
        post=None,
    )
    for path, extra in (
        ("/", {}),
        ("/dashboard.json", {}),
        ("/runs/", {"q": "error"}),
        ("/alerts/", {"alert_status": "all", "status": "failed", "error": "own error"}),
        ("/failures/", {"format": "json"}),
        ("/failures/", {"format": "csv"}),
        ("/failures/", {"status": "timeout", "app_type": "app1_chat"}),
    )
]

ADMIN_NAMESPACE = "admin"  # covered by the admin rows above, not pattern by pattern
ROWS = {row.route: row for row in MATRIX + EXPORTS}


# Generating the cells from the URL configuration ------------------------------------


def url_patterns(patterns=None, prefix: str = "", namespace: str = ""):
    """(route, namespace) of every URL pattern, following includes."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, route, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            yield route, namespace


def undeclared_routes() -> list[str]:
    return sorted(
        route
        for route, namespace in url_patterns()
        if namespace != ADMIN_NAMESPACE and route not in ROWS
    )


def test_every_url_pattern_has_a_row():
    assert undeclared_routes() == []


def test_no_row_names_a_url_that_is_gone():
    routes = {route for route, namespace in url_patterns() if namespace != ADMIN_NAMESPACE}
    admin_rows = {r for r in ROWS if r.startswith("admin:")}
    exports = {row.route for row in EXPORTS}
    assert set(ROWS) - routes - admin_rows - exports == set()


def test_a_new_url_without_a_row_fails_the_matrix():
    from django.urls import include, path

    from aimonitor import urls as project_urls

    module = type(project_urls)("new_page_urls")
    module.urlpatterns = [
        *project_urls.urlpatterns,
        path("reports/", include(([path("", lambda request: None)], "reports"))),
    ]
    import sys

    sys.modules["new_page_urls"] = module
    try:
        with override_settings(ROOT_URLCONF="new_page_urls"):
            assert undeclared_routes() == ["reports/"]
    finally:
        del sys.modules["new_page_urls"]


def cells():
    for row in MATRIX + EXPORTS:
        for method in ("get", "post"):
            if getattr(row, method) is None:
                continue
            for role in ROLES:
                for side in (OWN, OTHER):
                    yield pytest.param(
                        row, method, role, side, id=f"{row.route}|{method}|{role}|{side}"
                    )


def expected_outcome(row: Row, method: str, role: str, side: str):
    outcome = getattr(row, method)[role]
    if isinstance(outcome, tuple):
        outcome = outcome[0 if side == OWN else 1]
    return outcome


def request(client: Client, row: Row, method: str, url: str, data: dict):
    if method == "get":
        return client.get(url, headers=row.headers)
    return client.post(url, data, headers=row.headers)


@pytest.mark.parametrize(("row", "method", "role", "side"), list(cells()))
def test_matrix(client, world, row, method, role, side):
    user = person(role)
    if user is not None:
        client.force_login(user)
    expected = expected_outcome(row, method, role, side)
    data = row.data(world, side) if (row.data and method == "post") else {}
    if row.setup and method == "post":
        data.update(row.setup(client, world, side))
    urls = row.url(world, side)
    urls = [urls] if isinstance(urls, str) else urls
    if "{panel}" in urls[0]:
        urls = [url.replace("{panel}", panel) for url in urls for panel in PANELS]

    if method == "post":
        urls = urls[-1:]  # one write per cell
    for one_url in urls:
        response = request(client, row, method, one_url, data)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode(errors="replace")
        where = f"{method.upper()} {one_url} as {role}"

        if expected == LOGIN:
            assert response.status_code == 302, where
            assert response["Location"].startswith("/accounts/login/?next="), where
        elif expected == ADMIN_LOGIN:
            assert response.status_code == 302, where
            assert response["Location"].startswith("/admin/login/?next="), where
        elif expected == ABSENT:
            assert response.status_code == 200, where
        elif isinstance(expected, Done):
            assert response.status_code == expected.status, f"{where}: {text[:500]}"
        else:
            assert response.status_code == expected, f"{where}: {text[:500]}"

        # Another site's markers never reach a person of site 1, whatever the answer.
        if role != "superuser":
            leaked = [marker for marker in OTHER_MARKERS if marker in text]
            assert leaked == [], f"{where} shows another site's data: {leaked}"

    if row.effect is not None and method == "post":
        # Done: the write happened; anything else: nothing changed (refused, or not found).
        assert row.effect(world, side) is isinstance(expected, Done), (
            f"{method.upper()} {urls[-1]} as {role} on the {side} site"
        )
    if row.effect is not None and method == "post" and not isinstance(expected, Done):
        assert not AuditEvent.objects.exists()  # a refusal writes no audit event either


@pytest.mark.parametrize(
    "url",
    [
        "/runs/",
        "/runs/?format=csv",
        "/jobs/",
        "/alerts/",
        "/cache/?format=csv",
        "/dashboard.json",
        "/incidents/",
    ],
)
def test_the_markers_would_be_seen(client, world, url):
    """The control: a superuser does see the other site's markers, so the search works."""
    client.force_login(person("superuser"))
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert any(marker in body.decode() for marker in OTHER_MARKERS)


# --- The Django admin: every URL of every registered model ---------------------------
#
# Generated from ``admin.site._registry``: each registered model must have a profile
# below (``test_every_registered_model_has_a_profile``), and each of its admin views
# (change list, add, change, delete, history) is tried by every role against an object
# of the person's own site and of another site. A site-limited admin reads and writes
# only their sites' rows of scoped models, and nothing of the reserved ones (who sees
# what); every write that goes through is audited.

from django.contrib import admin as django_admin  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402

from aimonitor.models import AppPrice, SiteAccess  # noqa: E402

RECORDS, SCOPED, RESERVED = "records", "scoped", "reserved"
ADMIN_VIEWS = ("changelist", "add", "change", "delete", "history")
NEW_NAME = "Renamed by the matrix"


@dataclass(frozen=True)
class AdminProfile:
    """How one registered model behaves in the admin, and how to write to it."""

    kind: str  # RECORDS: read-only, site-scoped; SCOPED: editable, site-scoped;
    #            RESERVED: only for people who see every site
    obj: Callable[[World, str], object]  # the object of the side
    add: Callable[[World, str], dict] | None = None  # add form data, for the side
    added: Callable[[World, str], bool] | None = None
    change: Callable[[World, str], dict] | None = None  # change form data
    changed: Callable[[World, str], bool] | None = None


def extra_world(world: World) -> dict:
    """The console models' objects of both sites (beside the AI rows)."""
    objects: dict = {}
    SiteName.objects.create(site_id=1, name="Ownsite Store")
    objects["sitename"] = {side: SiteName.objects.get(site_id=SITE[side]) for side in SITE}
    members = {side: make_user(f"{side}_member", "viewer", sites=[SITE[side]]) for side in SITE}
    objects["user"] = members
    objects["siteaccess"] = {side: members[side].site_access for side in SITE}
    objects["group"] = {side: Group.objects.create(name=f"{side}_group") for side in SITE}
    objects["auditevent"] = {
        side: AuditEvent.objects.record(
            actor=None,
            action="retry",
            target_table="ai_trigger_jobs",
            target_ids=[world.job[side].pk],
            site_id=SITE[side],
        )
        for side in SITE
    }
    objects["appprice"] = {
        side: AppPrice.objects.create(app_type=f"{side}_app", price_per_1k=1) for side in SITE
    }
    objects["newcomer"] = {
        side: get_user_model().objects.create_user(f"{side}_newcomer") for side in SITE
    }
    # Notifications: channels and rules serve every site (reserved); deliveries are
    # records of their incident's site.
    objects["channel"] = {
        side: Channel.objects.create(name=f"{side} hook", kind="webhook", url="http://x.test/")
        for side in SITE
    }
    objects["alertrule"] = {side: world.incident[side].rule for side in SITE}
    objects["incident"] = world.incident
    objects["delivery"] = {
        side: Delivery.objects.create(
            incident=world.incident[side], channel=objects["channel"][side], event="firing"
        )
        for side in SITE
    }
    return objects


def from_world(name: str) -> Callable[[World, str], object]:
    return lambda world, side: world.extra[name][side]


def from_rows(attr: str) -> Callable[[World, str], object]:
    return lambda world, side: getattr(world, attr)[side]


def site_name_added(world: World, side: str) -> bool:
    return SiteName.objects.filter(site_id=SITE[side], name=NEW_NAME).exists()


def user_change(world: World, side: str) -> dict:
    user = world.extra["user"][side]
    return {
        "username": f"{user.username}_renamed",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }


def rule_form(world: World, side: str, name: str) -> dict:
    return {
        "name": name,
        "kind": "failure_count",
        "site_id": SITE[side],
        "app_type": "",
        "window_minutes": 15,
        "threshold": 3,
        "min_calls": 10,
        "repeat_minutes": 60,
    }


ADMIN_PROFILES: dict[str, AdminProfile] = {
    "alerts.channel": AdminProfile(
        RESERVED,
        from_world("channel"),
        add=lambda world, side: {
            "name": f"{side} new hook",
            "kind": "webhook",
            "url": "http://y.test/",
        },
        added=lambda world, side: Channel.objects.filter(name=f"{side} new hook").exists(),
        change=lambda world, side: {"name": NEW_NAME, "kind": "webhook", "url": "http://y.test/"},
        changed=lambda world, side: Channel.objects.filter(name=NEW_NAME).exists(),
    ),
    "alerts.alertrule": AdminProfile(
        RESERVED,
        from_world("alertrule"),
        add=lambda world, side: rule_form(world, side, f"{side} new rule"),
        added=lambda world, side: AlertRule.objects.filter(name=f"{side} new rule").exists(),
        change=lambda world, side: rule_form(world, side, NEW_NAME),
        changed=lambda world, side: AlertRule.objects.filter(name=NEW_NAME).exists(),
    ),
    "alerts.incident": AdminProfile(RECORDS, from_world("incident")),
    "alerts.delivery": AdminProfile(RECORDS, from_world("delivery")),
    "aimonitor.runlog": AdminProfile(RECORDS, from_rows("run")),
    "aimonitor.triggerjob": AdminProfile(RECORDS, from_rows("job")),
    "aimonitor.cacheentry": AdminProfile(RECORDS, from_rows("cache")),
    "aimonitor.auditevent": AdminProfile(RECORDS, from_world("auditevent")),
    "aimonitor.sitename": AdminProfile(
        SCOPED,
        from_world("sitename"),
        add=lambda world, side: {"site_id": SITE[side], "name": NEW_NAME},
        added=site_name_added,
        change=lambda world, side: {"name": NEW_NAME},
        changed=site_name_added,
    ),
    "aimonitor.siteaccess": AdminProfile(
        RESERVED,
        from_world("siteaccess"),
        add=lambda world, side: {
            "user": world.extra["newcomer"][side].pk,
            "site_ids": str(SITE[side]),
        },
        added=lambda world, side: SiteAccess.objects.filter(
            user=world.extra["newcomer"][side]
        ).exists(),
        change=lambda world, side: {
            "user": world.extra["user"][side].pk,
            "site_ids": "1,2",
        },
        changed=lambda world, side: (
            SiteAccess.objects.get(user=world.extra["user"][side]).site_ids == [1, 2]
        ),
    ),
    "aimonitor.appprice": AdminProfile(
        RESERVED,
        from_world("appprice"),
        add=lambda world, side: {"app_type": f"{side}_new_app", "price_per_1k": "2.5"},
        added=lambda world, side: AppPrice.objects.filter(app_type=f"{side}_new_app").exists(),
        change=lambda world, side: {"app_type": f"{side}_app", "price_per_1k": "9.5"},
        changed=lambda world, side: AppPrice.objects.filter(
            app_type=f"{side}_app", price_per_1k=9.5
        ).exists(),
    ),
    "auth.user": AdminProfile(
        RESERVED,
        from_world("user"),
        add=lambda world, side: {
            "username": f"{side}_created",
            "usable_password": "true",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
        },
        added=lambda world, side: (
            get_user_model().objects.filter(username=f"{side}_created").exists()
        ),
        change=user_change,
        changed=lambda world, side: (
            get_user_model().objects.filter(username=f"{side}_member_renamed").exists()
        ),
    ),
    "auth.group": AdminProfile(
        RESERVED,
        from_world("group"),
        add=lambda world, side: {"name": f"{side}_new_group"},
        added=lambda world, side: Group.objects.filter(name=f"{side}_new_group").exists(),
        change=lambda world, side: {"name": f"{side}_renamed_group"},
        changed=lambda world, side: Group.objects.filter(name=f"{side}_renamed_group").exists(),
    ),
}


def registered_models() -> list[str]:
    return sorted(model._meta.label_lower for model in django_admin.site._registry)


def test_every_registered_model_has_a_profile():
    assert sorted(ADMIN_PROFILES) == registered_models()


NOT_STAFF = {"anonymous": ADMIN_LOGIN, "viewer": ADMIN_LOGIN, "operator": ADMIN_LOGIN}


def admin_expected(kind: str, view: str, method: str) -> dict:
    """The outcome of one admin view of one kind of model, per role (and side)."""
    if kind == RESERVED:  # a site-limited admin: refused, whichever site
        superuser = {
            ("changelist", "get"): 200,
            ("add", "get"): 200,
            ("add", "post"): Done(302),
            ("change", "get"): 200,
            ("change", "post"): Done(302),
            ("delete", "get"): 200,
            ("delete", "post"): Done(302),
            ("history", "get"): 200,
        }[view, method]
        return {**NOT_STAFF, "admin": 403, "superuser": superuser}
    if kind == RECORDS:
        admin_role, superuser = {
            ("changelist", "get"): ((200, ABSENT), 200),
            ("add", "get"): (403, 403),
            ("add", "post"): (403, 403),
            ("change", "get"): ((200, 302), 200),
            ("change", "post"): (403, 403),
            ("delete", "get"): (403, 403),
            ("delete", "post"): (403, 403),
            ("history", "get"): ((200, 404), 200),
        }[view, method]
        return {**NOT_STAFF, "admin": admin_role, "superuser": superuser}
    # SCOPED: editable on one's own sites; another site's row "doesn't exist" (302),
    # and a new row for another site is refused by the form (200, with the error).
    admin_role, superuser = {
        ("changelist", "get"): ((200, ABSENT), 200),
        ("add", "get"): (200, 200),
        ("add", "post"): ((Done(302), 200), Done(302)),
        ("change", "get"): ((200, 302), 200),
        ("change", "post"): ((Done(302), 302), Done(302)),
        ("delete", "get"): (403, 200),  # the admin role may not delete site names
        ("delete", "post"): (403, Done(302)),
        ("history", "get"): ((200, 404), 200),
    }[view, method]
    return {**NOT_STAFF, "admin": admin_role, "superuser": superuser}


def admin_url(label: str, view: str, obj) -> str:
    app, model = label.split(".")
    base = f"/admin/{app}/{model}/"
    return {
        "changelist": base,
        "add": f"{base}add/",
        "change": f"{base}{obj.pk}/change/",
        "delete": f"{base}{obj.pk}/delete/",
        "history": f"{base}{obj.pk}/history/",
    }[view]


def admin_cells():
    for label in registered_models():
        for view in ADMIN_VIEWS:
            methods = ("get",) if view in ("changelist", "history") else ("get", "post")
            for method in methods:
                for role in ROLES:
                    for side in (OWN, OTHER):
                        yield pytest.param(
                            label,
                            view,
                            method,
                            role,
                            side,
                            id=f"{label}|{view}|{method}|{role}|{side}",
                        )


def admin_effect(profile: AdminProfile, view: str, obj) -> Callable[[World, str], bool] | None:
    if view == "add":
        return profile.added
    if view == "change":
        return profile.changed
    if view == "delete":
        return lambda world, side: not type(obj).objects.filter(pk=obj.pk).exists()
    return None


@pytest.mark.parametrize(("label", "view", "method", "role", "side"), list(admin_cells()))
def test_admin_matrix(client, world, label, view, method, role, side):
    profile = ADMIN_PROFILES[label]
    world.extra = extra_world(world)
    obj = profile.obj(world, side)
    user = person(role)
    if user is not None:
        client.force_login(user)
    outcome = admin_expected(profile.kind, view, method)[role]
    if isinstance(outcome, tuple):
        outcome = outcome[0 if side == OWN else 1]
    url = admin_url(label, view, obj)
    where = f"{method.upper()} {url} as {role} ({side} site)"
    data = {}
    if method == "post":
        if view == "add" and profile.kind == SCOPED:
            SiteName.objects.filter(site_id=SITE[side]).delete()  # free the key to add
        if view == "add":
            data = profile.add(world, side) if profile.add else {}
        elif view == "change":
            data = profile.change(world, side) if profile.change else {}
        else:
            data = {"post": "yes"}
    events_before = AuditEvent.objects.count()

    response = client.post(url, data) if method == "post" else client.get(url)
    text = response.content.decode(errors="replace")

    if outcome == ADMIN_LOGIN:
        assert response.status_code == 302, where
        assert response["Location"].startswith("/admin/login/?next="), where
    elif outcome == ABSENT:
        assert response.status_code == 200, where
    elif isinstance(outcome, Done):
        assert response.status_code == outcome.status, f"{where}: {text[:800]}"
    else:
        assert response.status_code == outcome, f"{where}: {text[:800]}"
    if role != "superuser":
        leaked = [marker for marker in OTHER_MARKERS if marker in text]
        assert leaked == [], f"{where} shows another site's data: {leaked}"

    if method == "post":
        effect = admin_effect(profile, view, obj)
        if effect is not None:
            assert effect(world, side) is isinstance(outcome, Done), where
        # An admin write is audited (who, what, the site); a refused one writes nothing.
        events = AuditEvent.objects.order_by("-id")[: AuditEvent.objects.count() - events_before]
        if isinstance(outcome, Done):
            (event,) = events
            assert event.actor == user
            assert event.action == f"admin_{'delete' if view == 'delete' else view}"
            assert event.target_table == type(obj)._meta.db_table
            if profile.kind == SCOPED:
                assert event.site_id == SITE[side]
        else:
            assert list(events) == [], where
