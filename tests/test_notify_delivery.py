"""Deliveries to real receivers: a local HTTP server for each webhook format (with the
signatures checked the way each platform documents them) and a local SMTP server;
retries on timeouts and 5xx, every attempt recorded, a dead channel blocking nothing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings
from django.utils import timezone
from werkzeug import Response

from aimonitor.models import SiteName
from alerts.models import AlertRule, Channel, Delivery, Incident
from alerts.notify import channels
from alerts.notify.deliver import attempt
from alerts.notify.messages import compose

STARTED = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=7)


@pytest.fixture
def incident(db):
    SiteName.objects.create(site_id=3, name="West Lake Store")
    rule = AlertRule.objects.create(
        name="Chat failing", kind="failure_rate", site_id=3, app_type="app1_chat", threshold=0.2
    )
    return Incident.objects.create(
        rule=rule,
        key="site=3;app=app1_chat",
        site_id=3,
        app_type="app1_chat",
        started_at=STARTED,
        last_value=0.35,
        threshold=0.2,
        window_minutes=15,
    )


def queue(incident, channel, event="firing", sequence=0) -> Delivery:
    return Delivery.objects.create(
        incident=incident, channel=channel, event=event, sequence=sequence
    )


def channel(kind: str, url: str = "", **fields) -> Channel:
    return Channel.objects.create(name=kind, kind=kind, url=url, **fields)


def received(httpserver) -> list:
    return [request for request, _ in httpserver.log]


# --- The generic webhook --------------------------------------------------------------


@override_settings(BASE_URL="https://console.example", NOTIFY_LANGUAGE="zh-hans")
def test_webhook_json_is_signed_with_hmac_sha256(httpserver, incident):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    hook = channel("webhook", httpserver.url_for("/hook"), secret="k3y")
    delivery = queue(incident, hook)
    assert attempt(delivery.pk) == "sent"
    (request,) = received(httpserver)
    body = request.get_data()
    expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert request.headers["X-AIMonitor-Signature"] == expected
    assert request.headers["X-AIMonitor-Delivery"] == f"aimonitor-delivery-{delivery.pk}"
    data = json.loads(body)
    assert set(data) == {
        "event", "rule", "kind", "site_id", "app_type", "value", "threshold",
        "window_minutes", "started_at", "resolved_at", "url", "text",
    }  # fmt: skip
    assert (data["event"], data["rule"], data["kind"], data["site_id"]) == (
        "firing", "Chat failing", "failure_rate", 3,
    )  # fmt: skip
    assert (data["value"], data["threshold"], data["window_minutes"]) == (0.35, 0.2, 15)
    assert data["resolved_at"] is None
    assert dt.datetime.fromisoformat(data["started_at"]) == STARTED
    since = timezone.localtime(STARTED - dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M")
    url = urlsplit(data["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "console.example", "/failures/")
    assert parse_qs(url.query) == {"site": ["3"], "app_type": ["app1_chat"], "since": [since]}
    # In Chinese by default, naming rule, value vs threshold, window, site, app, since.
    text = data["text"]
    for part in (
        "Chat failing",
        "35.0%",
        "20.0%",
        "15",
        "West Lake Store",
        "app1_chat",
        data["url"],
    ):
        assert part in text, part
    assert text.startswith("[AI 监控] 告警触发：Chat failing\n规则：Chat failing（失败率）")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.http_status) == ("sent", 1, 200)


def test_webhook_without_a_secret_is_not_signed(httpserver, incident):
    httpserver.expect_request("/hook").respond_with_data("ok")
    queue(incident, channel("webhook", httpserver.url_for("/hook")))
    attempt(Delivery.objects.get().pk)
    assert "X-AIMonitor-Signature" not in received(httpserver)[0].headers


@override_settings(NOTIFY_LANGUAGE="en")
def test_messages_follow_the_notify_language(httpserver, incident):
    httpserver.expect_request("/hook").respond_with_data("ok")
    queue(incident, channel("webhook", httpserver.url_for("/hook")), event="reminder", sequence=2)
    attempt(Delivery.objects.get().pk)
    text = json.loads(received(httpserver)[0].get_data())["text"]
    assert "STILL FIRING: Chat failing" in text and "Reminder 2" in text
    assert "over the last 15 minutes" in text


# --- The robots -------------------------------------------------------------------------


def test_wecom_robot_gets_markdown(httpserver, incident):
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    queue(incident, channel("wecom", httpserver.url_for("/cgi-bin/webhook/send?key=abc")))
    assert attempt(Delivery.objects.get().pk) == "sent"
    request = received(httpserver)[0]
    assert request.args["key"] == "abc"
    data = request.get_json()
    assert data["msgtype"] == "markdown"
    assert data["markdown"]["content"].startswith("### [AI 监控] 告警触发：Chat failing")
    assert "West Lake Store" in data["markdown"]["content"]


def test_dingtalk_robot_is_signed_as_dingtalk_documents(httpserver, incident):
    secret = "SEC0123456789abcdef"

    def dingtalk(request):
        # DingTalk's check: the sign of (timestamp + "\n" + secret) within an hour.
        timestamp = request.args["timestamp"]
        string_to_sign = f"{timestamp}\n{secret}"
        digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
        ok = request.args["sign"] == base64.b64encode(digest).decode()
        ok = ok and abs(int(timestamp) - time.time() * 1000) < 3_600_000
        return Response(
            json.dumps(
                {"errcode": 0 if ok else 310000, "errmsg": "ok" if ok else "sign not match"}
            ),
            content_type="application/json",
        )

    httpserver.expect_request("/robot/send").respond_with_handler(dingtalk)
    queue(
        incident,
        channel("dingtalk", httpserver.url_for("/robot/send?access_token=t"), secret=secret),
    )
    assert attempt(Delivery.objects.get().pk) == "sent"
    data = received(httpserver)[0].get_json()
    assert data["msgtype"] == "markdown"
    assert data["markdown"]["title"].endswith("Chat failing")
    assert "app1_chat" in data["markdown"]["text"]


def test_a_robot_refusing_the_message_is_a_failure_not_retried(httpserver, incident):
    httpserver.expect_request("/robot/send").respond_with_json(
        {"errcode": 310000, "errmsg": "sign not match"}
    )
    queue(incident, channel("dingtalk", httpserver.url_for("/robot/send"), secret="wrong"))
    assert attempt(Delivery.objects.get().pk) == "failed"
    delivery = Delivery.objects.get()
    assert (delivery.attempts, delivery.http_status, delivery.error) == (
        1,
        200,
        "310000: sign not match",
    )


def test_feishu_bot_is_signed_as_feishu_documents(httpserver, incident):
    secret = "feishu-secret"

    def feishu(request):
        data = request.get_json()
        # Feishu's check: HMAC-SHA256 keyed by timestamp + "\n" + secret, empty message.
        key = f"{data['timestamp']}\n{secret}".encode()
        ok = data["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        ok = ok and abs(int(data["timestamp"]) - time.time()) < 3600
        body = {"code": 0, "msg": "success"} if ok else {"code": 19021, "msg": "sign match fail"}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/open-apis/bot/v2/hook/x").respond_with_handler(feishu)
    queue(
        incident, channel("feishu", httpserver.url_for("/open-apis/bot/v2/hook/x"), secret=secret)
    )
    assert attempt(Delivery.objects.get().pk) == "sent"
    data = received(httpserver)[0].get_json()
    assert data["msg_type"] == "text" and "Chat failing" in data["content"]["text"]


def test_slack_incoming_webhook_gets_text_and_blocks(httpserver, incident):
    httpserver.expect_request("/services/T/B/X").respond_with_data("ok")
    queue(incident, channel("slack", httpserver.url_for("/services/T/B/X")))
    assert attempt(Delivery.objects.get().pk) == "sent"
    data = received(httpserver)[0].get_json()
    assert "Chat failing" in data["text"]
    assert [block["type"] for block in data["blocks"]] == ["header", "section"]


# --- Retries, timeouts and dead channels ------------------------------------------------


def test_5xx_is_retried_up_to_three_attempts_each_recorded(httpserver, incident):
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    delivery = queue(incident, channel("webhook", httpserver.url_for("/hook")))
    assert [attempt(delivery.pk) for _ in range(4)] == ["retrying", "retrying", "failed", None]
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.http_status) == (3, 503)
    assert [entry["http_status"] for entry in delivery.log] == [503, 503, 503]
    assert len(received(httpserver)) == 3


def test_a_4xx_is_not_retried(httpserver, incident):
    httpserver.expect_request("/hook").respond_with_data("gone", status=404)
    delivery = queue(incident, channel("webhook", httpserver.url_for("/hook")))
    assert attempt(delivery.pk) == "failed"


def test_a_timeout_is_retried_and_a_later_success_recorded(httpserver, incident, monkeypatch):
    monkeypatch.setattr(channels, "TIMEOUT", 0.3)
    calls = []

    def slow_then_fine(request):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1)
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(slow_then_fine)
    delivery = queue(incident, channel("webhook", httpserver.url_for("/hook")))
    assert attempt(delivery.pk) == "retrying"
    time.sleep(1)  # the receiver serves one request at a time: let the slow one finish
    assert attempt(delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert "timed out" in delivery.log[0]["error"]
    assert (delivery.attempts, delivery.status) == (2, "sent")


def test_a_dead_channel_does_not_block_the_others(httpserver, incident):
    httpserver.expect_request("/hook").respond_with_data("ok")
    dead = queue(incident, channel("webhook", "http://127.0.0.1:9/refused"))
    alive = queue(incident, channel("slack", httpserver.url_for("/hook")))
    assert attempt(dead.pk) == "retrying"
    assert attempt(alive.pk) == "sent"
    dead.refresh_from_db()
    assert dead.http_status is None and "ConnectError" in dead.error


def test_a_sent_delivery_is_never_sent_again(httpserver, incident):
    httpserver.expect_request("/hook").respond_with_data("ok")
    delivery = queue(incident, channel("webhook", httpserver.url_for("/hook")))
    assert attempt(delivery.pk) == "sent"
    assert attempt(delivery.pk) is None
    assert len(received(httpserver)) == 1


# --- Email ------------------------------------------------------------------------------


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd checks readiness on it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_email_goes_through_djangos_smtp_settings(smtp, incident, settings):
    port, inbox = smtp
    import dj_email_url

    for name, value in dj_email_url.parse(
        f"smtp://127.0.0.1:{port}/?_default_from_email=ai@shop.example"
    ).items():
        setattr(settings, name, value)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    mail = channel("email", recipients="ops@shop.example, boss@shop.example")
    assert attempt(queue(incident, mail).pk) == "sent"
    (envelope,) = inbox.messages
    assert envelope.mail_from == "ai@shop.example"
    assert sorted(envelope.rcpt_tos) == ["boss@shop.example", "ops@shop.example"]
    content = envelope.content.decode()
    assert "Subject:" in content and "X-AIMonitor-Delivery" in content


def test_email_to_a_server_that_is_down_is_retried(incident, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    mail = channel("email", recipients="ops@shop.example")
    assert attempt(queue(incident, mail).pk) == "retrying"


def test_the_message_names_everything(incident):
    delivery = queue(incident, channel("webhook", "http://127.0.0.1:9/"), event="resolved")
    incident.resolved_at = STARTED + dt.timedelta(minutes=30)
    incident.save()
    delivery.refresh_from_db()
    message = compose(delivery)
    assert message.payload["event"] == "resolved" and message.payload["resolved_at"]


def test_an_unexpected_error_is_recorded_as_a_failure_not_retried_forever(incident, monkeypatch):
    from alerts.notify import deliver

    def broken(delivery):
        raise KeyError("no such template")

    monkeypatch.setattr(deliver, "compose", broken)
    delivery = queue(incident, channel("webhook", "http://127.0.0.1:9/"))
    assert attempt(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.error == "KeyError: 'no such template'" and delivery.attempts == 1
