"""The shared machinery of the console's list pages (runs, jobs, cache, alerts).

A list page is a ``FilteredListView`` with a ``FilterForm`` subclass: the form
validates the query parameters (bad input → the page with the errors, status
400), checks the ``site`` against the user's access (403), and narrows the
scoped queryset. The view paginates with a capped count, swaps only the table
for HTMX requests, and streams the same rows as CSV with ``format=csv``.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from urllib.parse import quote, urlencode

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.validators import RegexValidator
from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from aimonitor.models import SiteName, site_label
from aimonitor.scope import Scope
from aimonitor.sites import site_choices
from aimonitor.skipscan import distinct_values_in_sites
from aimonitor.timestamps import OutOfRangeTime

PAGE_SIZES = (25, 50, 100)
# Counting stops here: "10,000+" is as useful to a person as the exact figure
# and costs a bounded scan. Pages stop at the same point.
COUNT_CAP = 10_000
MAX_ID = 2**63 - 1


def capped_count(queryset) -> int:
    """The rows of ``queryset``, counted up to ``COUNT_CAP + 1`` (more means "10,000+")."""
    # Unordered: any index may serve a bounded count.
    return queryset.order_by().values("pk")[: COUNT_CAP + 1].count()


def capped_text(count: int) -> str:
    """A capped count as people read it everywhere: "9,999", "10,000", "10,000+"."""
    if count > COUNT_CAP:
        return f"{intcomma(COUNT_CAP)}+"
    return intcomma(count)


# The fragment of a list page: templates/aimonitor/list_page.html's results block.
LIST_RESULTS = "list_page:results"


class HtmxTemplateMixin:
    """Full page normally; the named partial ``htmx_partial`` for HTMX requests."""

    template_name: str
    htmx_partial: str | None = None

    def is_fragment(self) -> bool:
        """True when HTMX asks for the partial (a history restore wants the whole page)."""
        htmx = getattr(self.request, "htmx", False)
        return bool(self.htmx_partial and htmx and not htmx.history_restore_request)

    def get_template_names(self) -> list[str]:
        """The page, or its partial when HTMX asks for a fragment.

        A list page (``aimonitor/list_page.html``) draws its fragment itself: it names
        no partial (``htmx_partial = LIST_RESULTS``) and renders only its results block.
        """
        if self.is_fragment() and self.htmx_partial != LIST_RESULTS:
            return [f"{self.template_name}#{self.htmx_partial}"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["is_fragment"] = self.is_fragment()  # e.g. for hx-swap-oob extras
        return context

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        # One URL answers a page or a fragment: caches must keep them apart.
        patch_vary_headers(response, ["HX-Request"])
        return response


class BigIntegerField(forms.IntegerField):
    """A positive id that fits PostgreSQL's bigint (huge numbers are a 400, not a 500)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)


class SuggestionsInput(forms.TextInput):
    """A text input with a <datalist> of known values; any other value may still be typed."""

    def __init__(self, suggestions=(), attrs=None):
        super().__init__(attrs)
        self.suggestions = list(suggestions)

    def render(self, name, value, attrs=None, renderer=None):
        if not self.suggestions:
            return super().render(name, value, attrs, renderer)
        list_id = f"{(attrs or {}).get('id') or name}-suggestions"
        html = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = format_html_join("", '<option value="{}">', ((v,) for v in self.suggestions))
        return format_html('{}<datalist id="{}">{}</datalist>', html, list_id, options)


class ScopeSuggestionsInput(SuggestionsInput):
    """Suggests the distinct values of ``model.column`` in ``user``'s sites (event types,
    cache types), read by a loose index scan when the input is drawn."""

    def __init__(self, model, column: str, user, attrs=None):
        super().__init__((), attrs)
        self.model, self.column, self.user = model, column, user

    def render(self, name, value, attrs=None, renderer=None):
        self.suggestions = distinct_values_in_sites(
            self.model, self.column, Scope.for_user(self.user).site_id_list
        )
        return super().render(name, value, attrs, renderer)


class SiteSelect(forms.Select):
    """The user's sites by name (``SiteName``); the value stays the site id, so a link or
    a typed ``?site=`` still works. Its choices are read when it is drawn."""

    def __init__(self, user, attrs=None):
        super().__init__(attrs)
        self.user = user

    def get_context(self, name, value, attrs):
        self.choices = [("", _("All my sites"))] + site_choices(self.user)
        return super().get_context(name, value, attrs)


class CodeField(forms.CharField):
    """A short machine value of an open set (app type, status, event type, ...).

    Free text, so values the console has never heard of still filter, but only
    letters, digits and ``_ . : -`` up to ``max_length``: anything else is a 400.
    """

    default_validators = [
        RegexValidator(
            r"^[A-Za-z0-9_.:-]+\Z", _("Use only letters, digits and “_”, “-”, “.”, “:”.")
        )
    ]

    def __init__(self, *, max_length: int = 32, suggestions=(), **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", SuggestionsInput(suggestions))
        super().__init__(max_length=max_length, **kwargs)
        # A known code may also be typed as its label: "circuit open" for circuit_open.
        self.aliases = {code.replace("_", " "): code for code in suggestions}

    def to_python(self, value):
        """Codes match case-insensitively: "Failed" finds failed (codes are lower case)."""
        text = " ".join(super().to_python(value).lower().split())
        return self.aliases.get(text, text)


class AppTypeField(CodeField):
    """An app type (or cache type) as the AI service names it: letters of any script,
    digits, ``_ . : -`` and single spaces inside (``chat v2``, ``聊天``)."""

    default_validators = [
        RegexValidator(
            r"^[\w.:-]+( [\w.:-]+)*\Z",
            _("Use only letters, digits, single spaces and “_”, “-”, “.”, “:”."),
        )
    ]

    def to_python(self, value):
        """As typed (trimmed): app types are the AI service's own names, case and all, and
        an exact match keeps the (app_type, created_at) index usable."""
        return forms.CharField.to_python(self, value)


class FilterForm(forms.Form):
    """Common list filters: ``site``, ``date_from``, ``date_to`` (local, inclusive), paging."""

    site = BigIntegerField(label=_("Site"))
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    page = forms.IntegerField(
        required=False, min_value=1, max_value=COUNT_CAP, widget=forms.HiddenInput
    )
    page_size = forms.TypedChoiceField(
        label=_("Per page"),
        required=False,
        coerce=int,
        choices=[(n, n) for n in PAGE_SIZES],
        empty_value=PAGE_SIZES[0],
    )

    # Fields that map 1:1 onto a column filter: {field name: lookup}.
    exact_filters: dict[str, str] = {}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user is not None and "site" in self.fields:
            self.fields["site"].widget = SiteSelect(user)

    def clean(self):
        data = super().clean()
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_from > date_to:
            raise forms.ValidationError(_("“From” must not be after “To”."))
        for name in ("date_from", "date_to"):
            day = data.get(name)
            if day and not (dt.date(2000, 1, 1) <= day <= dt.date(2100, 1, 1)):
                self.add_error(name, _("Choose a date between 2000 and 2100."))
        return data

    def _post_clean(self):
        super()._post_clean()
        # A date the browser's date input cannot hold (2026-02-30) would be shown
        # empty: a bad one comes back as text, as typed, beside its error.
        for name in ("date_from", "date_to"):
            if name in self.fields and name in self.errors:
                widget = self.fields[name].widget
                widget.input_type = "text"
                widget.attrs["aria-invalid"] = "true"

    def scope(self) -> Scope:
        """The user's scope narrowed to the chosen ``site``; a site outside the user's
        sites is a 403 (SPEC.md §5, ``Scope.require``)."""
        site = self.cleaned_data.get("site")
        scope = Scope.for_user(self.user)
        if site is not None:
            scope.require(site)
        return scope.narrow(site)

    def filter(self, queryset):
        """Narrow an already scoped queryset by the cleaned filters."""
        data = self.cleaned_data
        queryset = queryset.for_site(data.get("site"))
        queryset = queryset.between_local_days(data.get("date_from"), data.get("date_to"))
        for name, lookup in self.exact_filters.items():
            value = data.get(name)
            if value not in (None, ""):
                queryset = queryset.filter(**{lookup: value})
        return queryset

    def active_params(self) -> dict[str, str]:
        """The filters in force, as query parameters (without paging)."""
        params = {}
        for name in self.fields:
            if name == "page":
                continue
            value = self.data.get(name)
            if value not in (None, ""):
                params[name] = value
        return params


class RowIdsField(forms.Field):
    """Row ids, from repeated fields (checkboxes) or one comma-separated hidden value.

    A confirmation page carries the ids it showed in one input, and the bulk action
    (alerts, jobs, cache) then acts on exactly those, never on the filter run again;
    one input keeps the form under Django's DATA_UPLOAD_MAX_NUMBER_FIELDS.
    """

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": _("Row ids must be whole numbers.")}

    def to_python(self, value) -> list[int]:
        ids = set()
        for chunk in value or []:
            for token in re.split(r"[\s,]+", str(chunk).strip()):
                if not token:
                    continue
                if not (token.isascii() and token.isdigit()) or not 1 <= int(token) <= MAX_ID:
                    raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
                ids.add(int(token))
        return sorted(ids)


class CappedPage:
    """One page of rows plus a count that stops at ``COUNT_CAP``."""

    def __init__(self, queryset, number: int, size: int):
        self.size = size
        self.count = capped_count(queryset)
        self.count_capped = self.count > COUNT_CAP
        total = min(self.count, COUNT_CAP)
        self.num_pages = max(1, -(-total // size))
        self.number = min(number, self.num_pages)
        offset = (self.number - 1) * size
        self.object_list = list(queryset[offset : offset + size])

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.size + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        return self.start_index + len(self.object_list) - 1 if self.object_list else 0


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer."""

    def write(self, value):
        return value


# A cell starting with one of these is a formula to a spreadsheet: error texts
# written by the AI service must not run when an operator opens the export.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """One exported value: local ISO times, and text defused against formula injection."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, OutOfRangeTime):
        return value.raw  # "infinity", as PostgreSQL writes it
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def stream_csv(filename: str, header: list[str], rows, fallback: str | None = None):
    """Stream ``rows`` (an iterator of tuples) as a CSV download Excel opens in UTF-8.

    The file starts with a byte-order mark (without it Excel reads UTF-8 as the
    system's code page: mojibake on a Chinese Windows). An error while streaming is
    not caught: the server then aborts the chunked response, so the client sees an
    incomplete transfer rather than a well-formed, truncated file (docs/RELIABILITY.md).
    ``fallback`` is an ASCII file name for clients without RFC 5987 ``filename*``.
    """
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow([csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = attachment(filename, fallback)
    return response


def attachment(filename: str, fallback: str | None = None) -> str:
    """``Content-Disposition`` of a download; a non-ASCII name as RFC 5987 ``filename*``."""
    if filename.isascii():
        return f'attachment; filename="{filename}"'
    plain = fallback if fallback and fallback.isascii() else "export.csv"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _slug(text: str) -> str:
    """Letters and digits of any script, other runs as "-": safe in a file name."""
    return re.sub(r"[\W_]+", "-", text).strip("-")[:40]


def csv_file_name(what: str, user, form: FilterForm, *, with_name: bool = True) -> str:
    """What, which site and when: ``runs_site-2_2026-11-28.csv``.

    The site is the ``site`` filter, else the user's sites (``all-sites`` for every
    site); a named site adds its name. The dates are the ``date_from``/``date_to``
    filters, else the local day of the export.
    """
    sites = form.scope().site_ids
    if sites is None:
        where = "all-sites"
    elif len(sites) == 1:
        where = f"site-{sites[0]}"
        name = SiteName.objects.filter(site_id=sites[0]).values_list("name", flat=True).first()
        if with_name and name and _slug(name):
            where += f"-{_slug(name)}"
    elif not sites:
        where = "no-sites"
    else:
        where = (
            "sites-" + "-".join(str(s) for s in sites) if len(sites) <= 5 else f"{len(sites)}-sites"
        )
    date_from, date_to = form.cleaned_data.get("date_from"), form.cleaned_data.get("date_to")
    if date_from and date_to:
        when = date_from.isoformat() if date_from == date_to else f"{date_from}_to_{date_to}"
    elif date_from or date_to:
        when = f"from-{date_from}" if date_from else f"to-{date_to}"
    else:
        when = timezone.localdate().isoformat()
    return f"{what}_{where}_{when}.csv"


def with_site_names(fields: list[str], rows):
    """``rows`` with a ``site_name`` beside ``site_id`` (unnamed sites read "Site N")."""
    if "site_id" not in fields:
        yield from rows
        return
    at = fields.index("site_id") + 1
    names = dict(SiteName.objects.values_list("site_id", "name"))
    labels: dict[int, str] = {}
    for row in rows:
        site_id = row[at - 1]
        if site_id not in labels:
            labels[site_id] = names.get(site_id) or str(site_label(site_id))
        yield (*row[:at], labels[site_id], *row[at:])


def csv_header(fields: list[str]) -> list[str]:
    """The export's columns: ``fields``, with ``site_name`` after ``site_id``."""
    if "site_id" not in fields:
        return list(fields)
    at = fields.index("site_id") + 1
    return [*fields[:at], "site_name", *fields[at:]]


class FilteredListView(LoginRequiredMixin, HtmxTemplateMixin, TemplateView):
    """A filtered, paginated, CSV-exportable list of one AI table, scoped to the user."""

    model = None
    filter_form_class = FilterForm
    htmx_partial = LIST_RESULTS
    csv_filename = "export.csv"  # its stem names the file: runs_site-2_2026-11-28.csv
    csv_fields: list[str] = []  # never request_prompt / response_text

    def get_form(self) -> FilterForm:
        """The filter form bound to the query string."""
        # Always bound: an empty query string is a valid "no filters" request.
        return self.filter_form_class(self.request.GET, user=self.request.user)

    def get_base_queryset(self):
        """The user's rows of this table, newest first."""
        return self.model.objects.visible_to(Scope.for_user(self.request.user)).newest_first()

    def get_queryset(self, form: FilterForm):
        """The rows the valid filters select."""
        return form.filter(self.get_base_queryset())

    def get(self, request, *args, **kwargs):
        form = self.get_form()
        if not form.is_valid():
            context = self.get_context_data(form=form, page=None, invalid=True)
            return self.render_to_response(context, status=400)
        form.scope()  # a site outside the user's sites: 403
        queryset = self.get_queryset(form)
        if request.GET.get("format") == "csv":
            return self.render_csv(queryset, form)
        page = CappedPage(
            queryset,
            form.cleaned_data.get("page") or 1,
            form.cleaned_data.get("page_size") or PAGE_SIZES[0],
        )
        context = self.get_context_data(form=form, page=page, invalid=False)
        return self.render_to_response(context)

    def render_csv(self, queryset, form: FilterForm) -> StreamingHttpResponse:
        """The filtered rows as CSV, streamed from a server-side cursor."""

        # The database is chosen now, during the request (the replica, or the primary
        # just after the person's write: aimonitor/db_router.py), not while streaming.
        database = queryset.db

        def rows():
            # Inside a transaction: outside one, Django declares the cursor WITH HOLD,
            # and PostgreSQL then computes the whole result before the first row.
            with transaction.atomic(using=database):
                yield from (
                    queryset.using(database).values_list(*self.csv_fields).iterator(chunk_size=2000)
                )

        what = self.csv_filename.removesuffix(".csv")
        user = self.request.user
        return stream_csv(
            csv_file_name(what, user, form),
            csv_header(self.csv_fields),
            with_site_names(self.csv_fields, rows()),
            fallback=csv_file_name(what, user, form, with_name=False),
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = kwargs["form"]
        params = form.active_params()
        page = kwargs.get("page")
        context["object_list"] = page.object_list if page is not None else []  # the rows
        context["count_cap"] = COUNT_CAP
        context["filter_params"] = params  # for hidden inputs of bulk-action forms
        context["query_string"] = urlencode(params)
        context["csv_query_string"] = urlencode({**params, "format": "csv"})
        return context
