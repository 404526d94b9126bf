"""Sending one message to one channel, in each platform's documented format.

``send(channel, message, key)`` makes exactly one attempt (5 s timeout) and says how
it went: sent, or failed and whether trying again may help (timeouts, connection
errors, 429 and 5xx may; other 4xx and a platform's error code in a 200 answer do
not). Retries and their backoff belong to the caller (``alerts.notify.deliver``).

Signatures, as each platform documents them:
- webhook: ``X-AIMonitor-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by
  the secret>``; every request also carries ``X-AIMonitor-Delivery`` (the delivery's
  id), the same on every attempt, so a receiver can drop a repeat;
- DingTalk: query parameters ``timestamp`` (ms) and ``sign`` = URL-encoded base64 of
  HMAC-SHA256 keyed by the secret over ``"{timestamp}\\n{secret}"``;
- Feishu: body fields ``timestamp`` (s) and ``sign`` = base64 of HMAC-SHA256 keyed by
  ``"{timestamp}\\n{secret}"`` over an empty message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

import httpx
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from alerts.models import Channel
from alerts.notify.messages import Message

TIMEOUT = 5.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retryable: bool = False
    http_status: int | None = None
    error: str = ""


def _json_body(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def markdown(message: Message) -> str:
    """The robots' markdown: the title as a heading, the facts quoted, the link last."""
    lines = message.text.split("\n")
    facts = "\n".join(f"> {line}" for line in lines[1:-1])
    return f"### {message.title}\n{facts}\n\n[{message.link_label}]({message.url})"


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _request(channel: Channel, message: Message, key: str) -> tuple[str, bytes, dict]:
    """(url, body, headers) of the channel's one HTTP request."""
    headers = {"Content-Type": "application/json; charset=utf-8", "X-AIMonitor-Delivery": key}
    url = channel.url
    if channel.kind == Channel.Kind.WEBHOOK:
        body = _json_body(message.payload)
        if channel.secret:
            headers["X-AIMonitor-Signature"] = webhook_signature(channel.secret, body)
    elif channel.kind == Channel.Kind.WECOM:
        body = _json_body({"msgtype": "markdown", "markdown": {"content": markdown(message)}})
    elif channel.kind == Channel.Kind.DINGTALK:
        body = _json_body(
            {"msgtype": "markdown", "markdown": {"title": message.title, "text": markdown(message)}}
        )
        if channel.secret:
            timestamp = int(time.time() * 1000)
            joiner = "&" if "?" in url else "?"
            # sign is already URL-encoded, exactly as DingTalk's example builds it.
            url = f"{url}{joiner}timestamp={timestamp}&sign={dingtalk_sign(channel.secret, timestamp)}"
    elif channel.kind == Channel.Kind.FEISHU:
        data: dict = {"msg_type": "text", "content": {"text": message.text}}
        if channel.secret:
            timestamp = int(time.time())
            data = {
                "timestamp": str(timestamp),
                "sign": feishu_sign(channel.secret, timestamp),
                **data,
            }
        body = _json_body(data)
    elif channel.kind == Channel.Kind.SLACK:
        body = _json_body(
            {
                "text": message.text,
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": message.title}},
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": message.text.split("\n", 1)[-1]},
                    },
                ],
            }
        )
    else:
        raise ValueError(f"Not an HTTP channel: {channel.kind}")
    return url, body, headers


def _platform_error(channel: Channel, response: httpx.Response) -> str:
    """The error a robot reports inside a 200 answer ("" when it accepted the message)."""
    if channel.kind not in (Channel.Kind.WECOM, Channel.Kind.DINGTALK, Channel.Kind.FEISHU):
        return ""
    try:
        data = response.json()
    except ValueError:
        return ""
    code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
    if code in (0, None):
        return ""
    return f"{code}: {data.get('errmsg') or data.get('msg') or data.get('StatusMessage') or ''}"


def send_http(channel: Channel, message: Message, key: str) -> Outcome:
    url, body, headers = _request(channel, message, key)
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return Outcome(False, retryable=True, error=f"timed out after {TIMEOUT:g} s")
    except httpx.HTTPError as error:
        return Outcome(False, retryable=True, error=f"{type(error).__name__}: {error}"[:500])
    status = response.status_code
    if status >= 500 or status == 429:
        return Outcome(False, True, status, response.text[:500])
    if status >= 300:
        return Outcome(False, False, status, response.text[:500])
    error = _platform_error(channel, response)
    return Outcome(not error, False, status, error)


def send_email(channel: Channel, message: Message, key: str) -> Outcome:
    mail = EmailMessage(
        subject=message.title,
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=channel.recipient_list,
        headers={"X-AIMonitor-Delivery": key},
        connection=get_connection(timeout=TIMEOUT),
    )
    try:
        mail.send()
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
        return Outcome(False, False, error=str(error)[:500])
    except (TimeoutError, smtplib.SMTPException, OSError) as error:
        return Outcome(False, True, error=f"{type(error).__name__}: {error}"[:500])
    return Outcome(True)


def send(channel: Channel, message: Message, key: str) -> Outcome:
    """One attempt to deliver ``message`` on ``channel``."""
    if channel.kind == Channel.Kind.EMAIL:
        return send_email(channel, message, key)
    return send_http(channel, message, key)
