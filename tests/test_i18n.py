"""Translations: a complete zh-Hans catalogue, the browser's language, the switcher.

The catalogue is locale/zh_Hans/LC_MESSAGES/django.po and its compiled django.mo, both
committed (CI has no GNU gettext). See docs/ARCHITECTURE.md, "Translations".
"""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import formats, translation

from aimonitor.models import RunLog
from tests.conftest import client_for, make_run
from tests.test_dashboard import json_metrics, make_mixed_runs, page_metrics, same_value

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}


@pytest.fixture(autouse=True)
def _back_to_english():
    """A request leaves its language active in the thread; the next test starts in English."""
    yield
    translation.deactivate()


# --- the catalogue ---------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (obsolete "#~" ones left out); enough of the format for ours."""
    entries: list[Entry] = []
    entry, target = None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry, target = None, None
            continue
        if line.startswith("#~"):
            continue
        entry = entry or Entry()
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):  # a continuation of the keyword above
            name, index = target
            text = ast.literal_eval(line)
            if name == "msgstr":
                entry.msgstr[index] += text
            else:
                setattr(entry, name, getattr(entry, name) + text)
        else:
            keyword, _, value = line.partition(" ")
            text = ast.literal_eval(value)
            if keyword.startswith("msgstr"):
                index = int(keyword[7:-1]) if "[" in keyword else 0
                entry.msgstr[index] = text
                target = ("msgstr", index)
            else:
                setattr(entry, keyword, text)
                target = (keyword, None)
    return entries


@pytest.fixture(scope="module")
def po_entries() -> list[Entry]:
    return read_po(CATALOGUE / "django.po")


def test_the_catalogue_header_says_chinese_with_one_plural_form(po_entries):
    header = po_entries[0]
    assert header.msgid == ""
    assert "fuzzy" not in header.flags
    assert "Language: zh_Hans\n" in header.msgstr[0]
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header.msgstr[0]
    assert "charset=UTF-8" in header.msgstr[0]


def test_every_msgid_has_a_translation_and_none_is_fuzzy(po_entries):
    messages = po_entries[1:]
    assert len(messages) > 300
    untranslated = [e.msgid for e in messages if not all(e.msgstr.values()) or not e.msgstr]
    fuzzy = [e.msgid for e in messages if "fuzzy" in e.flags]
    assert untranslated == [], "msgids without a translation"
    assert fuzzy == [], "fuzzy translations (check them, then drop the flag)"
    plural_forms = {e.msgid: sorted(e.msgstr) for e in messages if e.msgid_plural is not None}
    assert all(forms == [0] for forms in plural_forms.values()), plural_forms


PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_translations_keep_the_placeholders_of_their_msgid(po_entries):
    """A lost or misspelt %(name)s would be a KeyError — a 500 — in Chinese only."""
    broken = []
    for entry in po_entries[1:]:
        if "python-format" not in entry.flags:
            continue
        allowed = set(PLACEHOLDER.findall(entry.msgid + (entry.msgid_plural or "")))
        for text in entry.msgstr.values():
            used = set(PLACEHOLDER.findall(text))
            stray = PLACEHOLDER.sub("", text).replace("%%", "")
            plural_may_drop = entry.msgid_plural is not None
            if not used <= allowed or "%" in stray or (not plural_may_drop and used != allowed):
                broken.append((entry.msgid, text))
    assert broken == []


def test_the_compiled_catalogue_matches_the_po_file(po_entries):
    """django.mo is what Django reads: it must hold exactly the translations of django.po."""
    with open(CATALOGUE / "django.mo", "rb") as mo_file:
        compiled = gettext.GNUTranslations(mo_file)._catalog
    expected = {}
    for entry in po_entries[1:]:
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            expected.update({(entry.key, i): text for i, text in entry.msgstr.items()})
    compiled = {key: text for key, text in compiled.items() if key != ""}
    assert compiled == expected, "run `manage.py compilemessages` and commit django.mo"


# --- forms -----------------------------------------------------------------------

FORM_MODULES = (
    "aimonitor.listing",
    "dashboard.runs",
    "dashboard.jobs",
    "dashboard.cache",
    "dashboard.batch",
    "dashboard.overview",
    "alerts.forms",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def project_forms() -> list[type]:
    """Every form class the console defines (Django's own forms are Django's to translate)."""
    import importlib

    from django import forms

    modules = [importlib.import_module(name) for name in FORM_MODULES]
    found, todo = [], [forms.Form]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if any(cls.__module__ == module.__name__ for module in modules):
            found.append(cls)
    return found


def test_every_form_label_and_help_text_is_translated():
    """A label or help text fixed in English at import (a lazy string interpolated too
    early, a plain str) shows English on a Chinese page: the catalogue test cannot see it."""
    forms_found = project_forms()
    assert {"BatchForm", "RunFilterForm", "AlertFilterForm"} <= {f.__name__ for f in forms_found}
    english = []
    with translation.override("zh-hans"):
        for form in forms_found:
            for name, field in form.base_fields.items():
                for kind in ("label", "help_text"):
                    text = str(getattr(field, kind) or "")
                    if re.search(r"[A-Za-z]{2}", text) and not CJK.search(text):
                        english.append(f"{form.__name__}.{name}.{kind}: {text}")
    assert english == []


def test_the_batch_help_text_follows_the_language(client, alice):
    client_for(client, alice)
    assert "用逗号、空格或换行分隔；最多 5,000 个。" in client.get("/batch/", **ZH).content.decode()
    assert "Separated by commas, spaces or new lines" in client.get("/batch/", **EN).text


# --- templates -------------------------------------------------------------------

TEMPLATES = Path(settings.BASE_DIR) / "templates"
LITERAL_ATTRIBUTE = re.compile(r'\b(?:title|aria-label|placeholder|alt)="([^"{]*[A-Za-z][^"{]*)"')


def untranslated_text(source: str) -> list[str]:
    """Words of a template outside {% translate %} / {% blocktranslate %} and variables."""
    source = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", " ", source, flags=re.S)
    source = re.sub(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", " ", source, flags=re.S)
    found = [f'attribute "{m}"' for m in LITERAL_ATTRIBUTE.findall(source)]
    source = re.sub(r"{%.*?%}|{{.*?}}", " ", source, flags=re.S)
    # <code> and <pre> hold commands and data, not prose.
    source = re.sub(
        r"<(script|style|code|pre)\b.*?</\1>|<!--.*?-->|<[^>]*>", " ", source, flags=re.S
    )
    found += [line.strip() for line in source.splitlines() if re.search(r"[A-Za-z]", line)]
    return found


def test_no_template_has_text_outside_the_translation_tags():
    offenders = {
        str(path.relative_to(TEMPLATES)): text
        for path in sorted(TEMPLATES.rglob("*.html"))
        if (text := untranslated_text(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_text_scan_sees_plain_text_and_literal_titles():
    assert untranslated_text('<p title="Pending">{% translate "x" %} Loose words</p>') == [
        'attribute "Pending"',
        "Loose words",
    ]
    assert (
        untranslated_text(
            '<a title="{% translate "ok" %}">{{ n }} {% blocktranslate %}a{% endblocktranslate %}</a>'
        )
        == []
    )
    assert untranslated_text("<p><code>manage.py check</code></p>") == []


# --- the browser's language ------------------------------------------------------


def test_the_dashboard_follows_accept_language(client, alice):
    make_run(tokens_used=1_234_567)
    client_for(client, alice)

    html = client.get("/", **ZH).content.decode()
    assert '<html lang="zh-hans">' in html
    assert ">告警" in html and ">仪表盘<" in html and ">调用记录<" in html
    assert "今日调用次数" in html and "成功率" in html
    assert "1,234,567" in html  # grouped by thousands in Chinese too
    assert "Calls today" not in html

    html = client.get("/", **EN).content.decode()
    assert '<html lang="en">' in html
    assert ">Dashboard<" in html and "Calls today" in html and "1,234,567" in html
    assert "告警" not in html


def test_without_accept_language_the_console_is_english(client, alice):
    html = client_for(client, alice).get("/").content.decode()
    assert '<html lang="en">' in html and "Calls today" in html


def test_the_alerts_page_in_chinese(client, bob):
    alert = make_run(status="circuit_open", error_message="breaker open")
    html = client_for(client, bob).get("/alerts/", **ZH).content.decode()
    assert "<h1>告警</h1>" in html
    assert "熔断" in html  # the status label
    assert ">确认</button>" in html and ">忽略</button>" in html
    assert f'value="{alert.id}"' in html

    html = client.get("/alerts/", **EN).content.decode()
    assert "<h1>Alerts</h1>" in html and ">Acknowledge</button>" in html


def test_status_codes_shown_without_a_label_are_translated(client, bob):
    make_run(status="circuit_open")
    client_for(client, bob)
    assert ">熔断</span>" in client.get("/runs/", **ZH).content.decode()
    assert ">circuit_open</span>" in client.get("/runs/", **EN).content.decode()


def test_the_login_page_follows_accept_language(client, db):
    html = client.get("/accounts/login/", **ZH).content.decode()
    assert "<h1>登录 AI 监控</h1>" in html and "用户名" in html and "密码" in html
    html = client.get("/accounts/login/", **EN).content.decode()
    assert "<h1>Log in to AI Monitor</h1>" in html


def test_python_messages_are_translated_too(client, bob):
    client_for(client, bob)
    refused = client.get("/runs/?site=2", **ZH)
    assert refused.status_code == 403
    assert "你无权访问门店 2。" in refused.content.decode()
    refused = client.get("/runs/?site=2", **EN)
    assert "You do not have access to site 2." in refused.content.decode()

    alert = make_run(status="failed")
    response = client.post(f"/alerts/{alert.id}/ack/", {"next": "/alerts/"}, follow=True, **ZH)
    assert f"告警 #{alert.id} 现为“已确认”。" in response.content.decode()
    alert.refresh_from_db()
    assert alert.alert_status == RunLog.AlertStatus.ACKNOWLEDGED


def test_the_figures_stay_raw_numbers_in_chinese(client, alice):
    """data-value carries the JSON's numbers whatever the language of the page."""
    make_mixed_runs(40)
    client_for(client, alice)
    expected = json_metrics(client.get("/dashboard.json", **ZH).json())
    metrics = page_metrics(client.get("/", **ZH).content.decode())
    assert set(metrics) == set(expected)
    assert {n: v for n, v in expected.items() if not same_value(metrics[n], v)} == {}


def test_numbers_and_dates_use_the_chinese_formats():
    """Thousands grouped "1,234,567" (aimonitor/formats/zh_Hans), Django's Chinese dates."""
    day = dt.datetime(2026, 3, 5, 14, 7)
    with translation.override("zh-hans"):
        assert intcomma(1_234_567) == "1,234,567"
        assert formats.date_format(day, "DATETIME_FORMAT") == "2026年3月5日 14:07"
    with translation.override("en"):
        assert intcomma(1_234_567) == "1,234,567"
        assert formats.date_format(day, "DATETIME_FORMAT") == "March 5, 2026, 2:07 p.m."


# --- the switcher ----------------------------------------------------------------


def switcher(html: str) -> str:
    match = re.search(r'<form class="language-picker".*?</form>', html, flags=re.S)
    assert match, "no language switcher on the page"
    return match.group(0)


def test_the_switcher_is_on_every_page_including_the_login_page(client, bob):
    for html in (
        client.get("/accounts/login/").content.decode(),
        client_for(client, bob).get("/runs/?status=failed").content.decode(),
    ):
        form = switcher(html)
        assert 'method="post" action="/i18n/setlang/"' in form
        assert "data-autosubmit" in form  # console.js submits it on change
        assert 'name="csrfmiddlewaretoken"' in form
        assert '<option value="en" lang="en" selected>English</option>' in form
        assert '<option value="zh-hans" lang="zh-hans" >简体中文</option>' in form
        assert '<noscript><button type="submit">Go</button></noscript>' in form
    assert 'name="next" value="/runs/?status=failed"' in form


def test_choosing_a_language_sticks_for_the_following_requests(client, bob):
    client_for(client, bob)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/runs/"})
    assert response.status_code == 302 and response["Location"] == "/runs/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"

    html = client.get("/runs/").content.decode()  # no Accept-Language: the cookie decides
    assert "<h1>调用记录</h1>" in html
    assert '<option value="zh-hans" lang="zh-hans" selected>简体中文</option>' in html

    client.post("/i18n/setlang/", {"language": "en", "next": "/runs/"})
    assert "<h1>Run logs</h1>" in client.get("/runs/", **ZH).content.decode()  # choice > browser


def test_the_switcher_works_before_logging_in(client, db):
    response = client.post(
        "/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"}, follow=True
    )
    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert "<h1>登录 AI 监控</h1>" in response.content.decode()


def test_the_switcher_refuses_other_hosts_and_unknown_languages(client, db):
    response = client.post(
        "/i18n/setlang/", {"language": "zh-hans", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"

    client.cookies.clear()
    client.post("/i18n/setlang/", {"language": "xx", "next": "/accounts/login/"})
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    assert "Log in to AI Monitor" in client.get("/accounts/login/").content.decode()


def test_a_get_does_not_change_the_language(client, db):
    client.get("/i18n/setlang/?language=zh-hans&next=/accounts/login/")
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
