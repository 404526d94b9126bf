"""Bad input never breaks a page: property-based tests over every parameter and form field.

For each page and action, hypothesis sends random query strings and form bodies built
from random text, huge and negative numbers, odd unicode (other scripts' digits,
superscripts, right-to-left marks, NUL), SQL and HTML metacharacters, template
syntax, and repeated parameters. Whatever arrives, the answer is never a 500 (the
test client re-raises any exception a view lets escape, streamed CSV included), and
no value that could be markup comes back unescaped in an HTML page.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_cache, make_job, make_run

# More for a deeper search: AIMONITOR_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py
FUZZ = settings(
    max_examples=int(os.environ.get("AIMONITOR_FUZZ_EXAMPLES", 50)),
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

XSS = [
    "<script>x</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</textarea><script>x</script>",
]
NASTY = [
    *XSS,
    "javascript:alert(1)",
    "' OR 1=1 --",
    "1; DROP TABLE auth_user; --",
    "%",
    "_",
    "\\",
    "\x00",
    "a\x00b",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "00",
    "+5",
    " 7 ",
    "1.5",
    "9" * 30,
    str(2**63),
    str(2**63 - 1),
    str(-(2**63) - 1),
    "٣",  # an Arabic-Indic digit
    "²",  # a superscript: str.isdigit() is True, int() refuses it
    "１２",  # full-width digits
    "🙂",
    "\u202e",
    "a" * 3000,
    "",
    " ",
    "true",
    "false",
    "on",
    "2026-02-30",
    "0001-01-01",
    "9999-12-31",
    "2026-13-01",
    "../../etc/passwd",
    "{{ 7|add:7 }}",
    "{% debug %}",
    "%s%s%s",
    "csv",
    "json",
]


def values(valid=()) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(max_size=40),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        *([st.sampled_from(list(valid))] if valid else []),
    )


def params(fields: dict[str, tuple]) -> st.SearchStrategy[dict[str, list[str]]]:
    """Some of the fields (plus an unknown one), each sent once or repeated."""
    names = [*fields, "unknown"]
    return st.sets(st.sampled_from(names)).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {
                name: st.lists(values(fields.get(name, ())), min_size=1, max_size=3)
                for name in sorted(chosen)
            }
        )
    )


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def check(response, sent: dict[str, list[str]], where: str) -> None:
    body = body_of(response)  # a streamed CSV runs its query here
    assert response.status_code < 500, f"{where} {sent!r}: {response.status_code}"
    if not response.get("Content-Type", "").startswith("text/html"):
        return
    html = body.decode(errors="replace")
    for name, items in sent.items():
        for item in [name, *items]:
            markup = "<" in item and any(c.isalpha() for c in item)
            if item in XSS or (len(item) >= 8 and markup):
                assert item not in html, f"{where}: {item!r} reflected unescaped"


DATES = ("2026-11-27", "2026-11-28")
LIST_FIELDS = {
    "site": ("1", "2", "3"),
    "date_from": DATES,
    "date_to": DATES,
    "page": ("1", "2", "10000"),
    "page_size": ("25", "50", "100"),
    "format": ("csv",),
}
RANGE_FIELDS = {
    "range": ("15m", "24h", "30d", "2h"),
    "since": ("2026-11-27T00:00", "2026-11-28T14:00", "2026-13-01T00:00"),
    "until": ("2026-11-28T00:00", "2026-12-30T00:00"),
}
GET_PAGES = {
    "/": {"site": ("1", "2"), **RANGE_FIELDS},
    "/dashboard.json": {"site": ("1", "2"), **RANGE_FIELDS},
    "/failures/": {
        "site": ("1", "2", "3"),
        **RANGE_FIELDS,
        "app_type": ("app1_chat",),
        "status": ("failed", "timeout", "success"),
        "format": ("json", "csv"),
    },
    "/dashboard/panels/today/": {"site": ("1",)},
    "/dashboard/panels/recent_alerts/": {"site": ("1",)},
    "/runs/": {
        **LIST_FIELDS,
        "app_type": ("app1_chat",),
        "status": ("failed", "success"),
        "trigger_type": ("event",),
        "member_id": ("1001", "1"),
        "q": ("1001", "timeout", "%_"),
        **RANGE_FIELDS,
    },
    "/jobs/": {
        **LIST_FIELDS,
        "event_type": ("consumption",),
        "status": ("failed",),
        "member_id": ("2001",),
        "is_forced": ("true", "false", ""),
        "batch": ("abc",),
        "retried": ("yes", "no", "maybe"),
        "stuck": ("yes",),
    },
    "/cache/": {
        **LIST_FIELDS,
        "cache_type": ("app3_clue",),
        "target_id": ("3001",),
        "status": ("valid", "invalidated"),
    },
    "/alerts/": {
        **LIST_FIELDS,
        "alert_status": ("pending", "acknowledged", "ignored", "all"),
        "app_type": ("app1_chat",),
        "status": ("timeout", "failed,circuit_open", "success"),
        "error": ("", "own error", "Timeout after # ms"),
        "member_id": ("1001", "0"),
        **RANGE_FIELDS,
    },
    "/jobs/health/": {"site": ("1", "2", "3")},
    "/alerts/new/": {
        "after_id": ("0", "1", "abc"),
        "alert_status": ("pending", "all"),
        "app_type": ("app1_chat",),
        "site": ("1", "3"),
        **RANGE_FIELDS,
    },
    "/incidents/": {"site": ("1", "2", "3"), "page": ("1", "2", "x")},
    "/batch/": {"site": ("1", "2")},
    "/accounts/login/": {"next": ("/runs/", "https://evil.example/")},
    "/admin/aimonitor/runlog/": {
        "q": ("1001", "error"),
        "o": ("1", "-2", "3.1"),
        "p": ("1", "2"),
        "site_id": ("1",),
        "app_type": ("app1_chat",),
        "status": ("failed",),
        "alert_status": ("pending",),
        "all": ("",),
        "e": ("1",),
    },
    "/admin/aimonitor/triggerjob/": {
        "q": ("2001",),
        "site_id": ("1",),
        "event_type": ("consumption",),
        "is_forced__exact": ("1", "0"),
        "status": ("failed",),
    },
    "/admin/aimonitor/cacheentry/": {
        "q": ("3001",),
        "site_id": ("1",),
        "cache_type": ("app3_clue",),
        "status": ("valid",),
    },
    "/admin/aimonitor/auditevent/": {"q": ("alice",), "action": ("retry",), "o": ("1",)},
}


@pytest.fixture
def data(db, settings):
    """A few rows of every kind on sites 1 and 2; fast password hashing for the login."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    rows = {"alert": [], "job": [], "cache": []}
    for site in (1, 2):
        make_run(site_id=site)
        rows["alert"].append(make_run(site_id=site, status="failed", error_message="<b>bad</b>"))
        rows["job"].append(make_job(site_id=site, status="failed"))
        rows["cache"].append(make_cache(site_id=site))
    return rows


@pytest.fixture
def fuzzer(client, alice, data):
    """An admin of sites 1 and 2: every page, every action, and a site to be refused."""
    client.force_login(alice)
    return client


@pytest.mark.parametrize("path", list(GET_PAGES))
def test_query_parameters_never_break_a_page(fuzzer, path):
    @FUZZ
    @given(sent=params(GET_PAGES[path]))
    def run(sent):
        headers = {"HX-Request": "true"} if path.startswith("/dashboard/panels/") else {}
        check(fuzzer.get(path, sent, headers=headers), sent, f"GET {path}")

    run()


@given(segment=values())
@FUZZ
def test_ids_in_paths_never_break_a_page(fuzzer, segment):
    from urllib.parse import quote

    for path in ("/runs/{}/", "/jobs/{}/", "/dashboard/panels/{}/"):
        url = path.format(quote(segment, safe=""))
        response = fuzzer.get(url)
        assert response.status_code in (200, 400, 403, 404), url


BULK_ALERTS = {
    "action": ("acknowledge", "ignore", "delete"),
    "scope": ("selected", "filter"),
    "ids": ("1", "2,3", "1 2"),
    "confirm": ("yes",),
    "alert_status": ("all",),
    "site": ("1", "2", "3"),
    "date_from": DATES,
}
POST_FORMS = {
    "/alerts/": BULK_ALERTS,
    "/alerts/{alert}/ack/": {"next": ("/alerts/", "https://evil.example/"), "layout": ("compact",)},
    "/alerts/{alert}/reopen/": {"next": ("/runs/",), "layout": ("list",)},
    "/jobs/": {
        "action": ("retry",),
        "ids": ("1", "2"),
        "select_across": ("1", "on"),
        "confirm": ("yes",),
        "key": ("0f8fad5b-d9cb-469f-a165-70867728950e",),
        "status": ("failed",),
        "site": ("1", "3"),
    },
    "/jobs/{job}/retry/": {"key": ("0f8fad5b-d9cb-469f-a165-70867728950e", "zz")},
    "/cache/": {
        "site": ("1", "2", "3"),
        "cache_type": ("app3_clue",),
        "member_id": ("3001",),
        "confirm": ("yes",),
    },
    "/batch/": {
        "site": ("1", "2", "3"),
        "app_types": ("app1_chat", "nope"),
        "member_ids": ("1 2 3", "1,,2\n3", "0", "-4"),
        "over_budget_ok": ("on",),
    },
    "/batch/confirm/": {"batch_id": ("x" * 32,), "over_budget_ok": ("on",)},
    "/batch/cancel/": {"batch_id": ("x" * 32,)},
    "/accounts/login/": {
        "username": ("alice", "nobody"),
        "password": ("wrong",),
        "next": ("/", "//evil.example/"),
    },
    "/i18n/setlang/": {"language": ("en", "zh-hans", "xx"), "next": ("/runs/", "//evil.example")},
    "/admin/aimonitor/runlog/": {
        "action": ("acknowledge_alerts", "ignore_alerts", "delete_selected"),
        "_selected_action": ("1", "2"),
        "index": ("0",),
        "select_across": ("0", "1"),
    },
    "/admin/aimonitor/triggerjob/": {
        "action": ("retry_jobs",),
        "_selected_action": ("1",),
        "select_across": ("0", "1"),
    },
    "/admin/aimonitor/cacheentry/": {
        "action": ("invalidate_entries",),
        "_selected_action": ("1",),
        "select_across": ("0",),
    },
}


@pytest.mark.parametrize("path", list(POST_FORMS))
def test_form_fields_never_break_an_action(fuzzer, data, path):
    url = path.format(alert=data["alert"][0].pk, job=data["job"][0].pk)

    @FUZZ
    @given(sent=params(POST_FORMS[path]), htmx=st.booleans())
    def run(sent, htmx):
        headers = {"HX-Request": "true"} if htmx else {}
        check(fuzzer.post(url, sent, headers=headers), sent, f"POST {path}")

    run()


# The values that broke pages before (unicode digits, NUL, overflow): every field gets
# each of them once, beside valid values in the other fields, so the search is sure to
# reach them and not only likely to.
TROUBLE = [
    "²",
    "٣",
    "\x00",
    "9" * 30,
    str(2**63),
    "-1",
    "1e309",
    "NaN",
    "<script>x</script>",
    "' OR 1=1 --",
    "",
]


def sweep(fields: dict[str, tuple]):
    base = {name: [valid[0]] for name, valid in fields.items() if valid}
    for name in fields:
        for value in TROUBLE:
            yield {**base, name: [value]}


@pytest.mark.parametrize("path", list(GET_PAGES))
def test_each_query_parameter_survives_each_troublemaker(fuzzer, path):
    headers = {"HX-Request": "true"} if path.startswith("/dashboard/panels/") else {}
    for sent in sweep(GET_PAGES[path]):
        check(fuzzer.get(path, sent, headers=headers), sent, f"GET {path}")


@pytest.mark.parametrize("path", list(POST_FORMS))
def test_each_form_field_survives_each_troublemaker(fuzzer, data, path):
    url = path.format(alert=data["alert"][0].pk, job=data["job"][0].pk)
    for sent in sweep(POST_FORMS[path]):
        check(fuzzer.post(url, sent), sent, f"POST {path}")


def test_a_nul_character_is_a_400(fuzzer):
    assert fuzzer.get("/admin/aimonitor/runlog/", {"app_type": "a\x00b"}).status_code == 400
    assert fuzzer.post("/alerts/", {"action": "acknowledge", "ids": "1\x00"}).status_code == 400


# --- Made-up lookups on every admin change list ------------------------------------
# Django's admin passes unknown query parameters to the queryset as lookups; one that
# the database cannot run (``?created_at__year=0``, ``?target_ids__contains=x``) must
# be refused or ignored, never a 500. Generated from the admin registry: every field of
# every registered model, with each of its lookups and the filters' own parameters.


def admin_changelists() -> dict[str, list[str]]:
    from django.contrib import admin

    lists = {}
    for model, model_admin in admin.site._registry.items():
        names = []
        for model_field in model._meta.concrete_fields:
            names.append(model_field.name)
            names += [f"{model_field.name}__{lookup}" for lookup in model_field.get_lookups()]
        for spec in model_admin.list_filter:
            name = getattr(spec, "parameter_name", None) or (
                spec if isinstance(spec, str) else None
            )
            if name:
                names += [name, f"{name}__exact", f"{name}__isnull", f"{name}__id__exact"]
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        lists[url] = sorted(set(names))
    return lists


ADMIN_CHANGELISTS = admin_changelists()
MADE_UP_LOOKUPS = [
    ("/admin/aimonitor/runlog/", {"created_at__year": "0"}),
    ("/admin/aimonitor/runlog/", {"created_at__year": "99999"}),
    ("/admin/aimonitor/runlog/", {"id__gt": "9" * 30}),
    ("/admin/aimonitor/auditevent/", {"target_ids__contains": "x"}),
    ("/admin/aimonitor/siteaccess/", {"site_ids__contains": "x"}),
    ("/admin/auth/user/", {"groups__id__exact": "9" * 30}),
    ("/admin/aimonitor/triggerjob/", {"is_forced__exact": "maybe"}),
]


@pytest.mark.parametrize(("path", "sent"), MADE_UP_LOOKUPS)
def test_made_up_admin_lookups_are_refused_not_500(client, root, data, path, sent):
    client.force_login(root)
    response = client.get(path, sent)
    assert response.status_code in (200, 302, 400), (path, sent, response.status_code)


@pytest.mark.parametrize("path", sorted(ADMIN_CHANGELISTS))
def test_admin_change_list_lookups_never_break_a_page(client, root, data, path):
    client.force_login(root)
    lookups = ADMIN_CHANGELISTS[path]

    @FUZZ
    @given(
        sent=st.dictionaries(
            st.sampled_from(lookups), st.lists(values(), min_size=1, max_size=2), max_size=3
        )
    )
    def run(sent):
        check(client.get(path, sent), sent, f"GET {path}")

    run()
    for lookup in lookups:
        # A lookup the change list refuses by name (400) is refused whatever its value;
        # one it accepts is tried with every troublemaker.
        first = client.get(path, {lookup: TROUBLE[0]})
        check(first, {lookup: [TROUBLE[0]]}, f"GET {path}")
        if first.status_code == 400:
            continue
        for value in TROUBLE[1:]:
            check(client.get(path, {lookup: value}), {lookup: [value]}, f"GET {path}")


# --- Row values ----------------------------------------------------------------------
# Not only what people send: every value the data contract lets the AI service write
# must show on every page. Each example writes one run, one job and one cache entry
# with hypothesis' choice of the columns' extremes, then opens every page that shows
# them (lists, CSV, details, dashboard, JSON, panels, the admin) and retries the job.

TIMES = st.one_of(
    st.sampled_from(
        [
            "infinity",
            "-infinity",
            "10000-01-01 00:00:00+00",
            "294276-12-31 23:59:59+00",
            "0001-01-01 00:00:00+00 BC",
            "4713-01-01 00:00:00+00 BC",
            "9999-12-31 23:59:59+00",
            "0001-01-01 00:00:00+00",
            "2026-11-27 16:00:00+00",  # local midnight in Asia/Shanghai
            "2026-11-27 15:59:59.999999+00",
        ]
    ),
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
    ).map(lambda moment: moment.isoformat() + "+00"),
)
NULLABLE_TIMES = st.one_of(st.none(), TIMES)
INTEGERS = st.one_of(
    st.none(), st.sampled_from([2**31 - 1, -(2**31), 0, -1]), st.integers(-(2**31), 2**31 - 1)
)
BIGINTS = st.sampled_from([1, 2, 2**63 - 1])
CODES = st.one_of(
    st.sampled_from(["success", "failed", "timeout", "circuit_open", "running", "z" * 32]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=32),
)
APP_TYPES = st.one_of(
    st.sampled_from(["app1_chat", "a" * 64, "chat v2", "静安旗舰店"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=64),
)
JSONS = st.one_of(
    st.none(),
    st.integers(0, 3000).map(lambda depth: "[" * depth + "1" + "]" * depth),
    st.integers(0, 3000).map(lambda depth: '{"a": ' * depth + "null" + "}" * depth),
    st.sampled_from(['{"batch_id": "b1"}', '"text"', "[]", '{"x": "]]]}}}"}']),
)
# Each example opens twenty-odd pages: fewer examples than the parameter fuzzing.
ROW_FUZZ = settings(FUZZ, max_examples=max(5, FUZZ.max_examples // 4))
ROW_PAGES = [
    "/",
    "/dashboard.json",
    "/dashboard/panels/today/",
    "/dashboard/panels/app_health/",
    "/dashboard/panels/recent_alerts/",
    "/runs/",
    "/runs/?format=csv",
    "/runs/{run}/",
    "/alerts/",
    "/alerts/?format=csv&alert_status=all",
    "/jobs/",
    "/jobs/?format=csv",
    "/jobs/{job}/",
    "/cache/",
    "/cache/?format=csv",
    "/admin/aimonitor/runlog/",
    "/admin/aimonitor/runlog/{run}/change/",
    "/admin/aimonitor/triggerjob/",
    "/admin/aimonitor/triggerjob/{job}/change/",
    "/admin/aimonitor/cacheentry/",
    "/admin/aimonitor/cacheentry/{cache}/change/",
]


def insert_row(sql: str, values: list) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchone()[0]


@given(
    run=st.fixed_dictionaries(
        {
            "site": BIGINTS,
            "app": APP_TYPES,
            "status": CODES,
            "tokens": INTEGERS,
            "latency": INTEGERS,
            "created": TIMES,
            "finished": NULLABLE_TIMES,
            "member": st.one_of(st.none(), BIGINTS),
        }
    ),
    job=st.fixed_dictionaries(
        {"payload": JSONS, "created": TIMES, "started": NULLABLE_TIMES, "finished": NULLABLE_TIMES}
    ),
    cache=st.fixed_dictionaries({"result": JSONS, "created": TIMES, "expires": NULLABLE_TIMES}),
)
@ROW_FUZZ
def test_every_row_value_the_contract_allows_shows_on_every_page(client, root, run, job, cache):
    from aimonitor.models import CacheEntry, RunLog, TriggerJob

    client.force_login(root)
    ids = {
        "run": insert_row(
            f'INSERT INTO "{RunLog._meta.db_table}" (site_id, app_type, trigger_type, member_id,'
            " tokens_used, latency_ms, status, created_at, finished_at)"
            " VALUES (%s, %s, 'event', %s, %s, %s, %s, %s::timestamptz, %s::timestamptz)"
            " RETURNING id",
            [
                run["site"],
                run["app"],
                run["member"],
                run["tokens"],
                run["latency"],
                run["status"],
                run["created"],
                run["finished"],
            ],
        ),
        "job": insert_row(
            f'INSERT INTO "{TriggerJob._meta.db_table}" (site_id, event_type, payload, status,'
            " created_at, started_at, finished_at)"
            " VALUES (1, 'consumption', %s::jsonb, 'failed', %s::timestamptz, %s::timestamptz,"
            " %s::timestamptz) RETURNING id",
            [job["payload"], job["created"], job["started"], job["finished"]],
        ),
        "cache": insert_row(
            f'INSERT INTO "{CacheEntry._meta.db_table}" (site_id, cache_type, target_id,'
            " result_json, created_at, expires_at)"
            " VALUES (1, 'app3_clue', 't', %s::jsonb, %s::timestamptz, %s::timestamptz)"
            " RETURNING id",
            [cache["result"], cache["created"], cache["expires"]],
        ),
    }
    for page in ROW_PAGES:
        path = page.format(**ids)
        check(client.get(path), {}, f"GET {path} with {run!r} {job!r} {cache!r}")
    retried = client.post(f"/jobs/{ids['job']}/retry/")
    assert retried.status_code < 500, (retried.status_code, job)
