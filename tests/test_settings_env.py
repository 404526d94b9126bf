"""Settings helpers reject malformed environment values, naming the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from aimonitor.env import envbool, envdecimal, envidentifier, envint, envtimezone


@pytest.mark.parametrize("raw", ["1", "true", "YES", "On", " TRUE "])
def test_envbool_true(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    assert envbool("X_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "OFF"])
def test_envbool_false(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    assert envbool("X_FLAG", True) is False


def test_envbool_default_when_unset(monkeypatch):
    monkeypatch.delenv("X_FLAG", raising=False)
    assert envbool("X_FLAG", True) is True


@pytest.mark.parametrize(
    "helper,raw",
    [
        (lambda: envbool("X_VAR", False), "maybe"),
        (lambda: envint("X_VAR", 1), "12k"),
        (lambda: envint("X_VAR", 1, minimum=1), "0"),
        (lambda: envdecimal("X_VAR"), "cheap"),
        (lambda: envdecimal("X_VAR"), "-1"),
        (lambda: envidentifier("X_VAR", "biz"), "biz; drop"),
        (lambda: envtimezone("X_VAR", "UTC"), "Mars/Olympus"),
    ],
)
def test_malformed_values_stop_start_up_naming_the_variable(monkeypatch, helper, raw):
    monkeypatch.setenv("X_VAR", raw)
    with pytest.raises(ImproperlyConfigured, match="X_VAR"):
        helper()


def test_settings_defaults(settings):
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.AI_SCHEMA == "biz"
    assert settings.DAILY_TOKEN_LIMIT == 100_000
    assert settings.MONTHLY_TOKEN_LIMIT == 2_000_000
    assert settings.AVG_TOKENS_PER_CALL == 2000
    assert settings.BATCH_TTL_SECONDS == 600
    assert settings.STUCK_MINUTES == 15
