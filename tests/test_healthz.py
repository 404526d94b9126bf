import pytest
from django.db import connection


def test_healthz_answers_200_without_login(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok"}


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_when_the_database_is_down_and_recovers(client):
    connection.close()
    saved = connection.settings_dict.copy()
    saved_options = dict(saved["OPTIONS"])
    connection.settings_dict["OPTIONS"] = {**saved_options, "host": "/nonexistent-socket-dir"}
    connection.settings_dict["HOST"] = ""
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["database"] == "unavailable"
    finally:
        connection.close()
        connection.settings_dict["OPTIONS"] = saved_options
    assert client.get("/healthz").status_code == 200


def test_healthz_refuses_post(client, db):
    assert client.post("/healthz").status_code == 405
