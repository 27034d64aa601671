from django.db import OperationalError


def test_healthz_answers_ok_when_the_database_answers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


SECRET_DETAIL = 'connection to server at "db.internal" (10.0.0.7), port 5432 failed: user "loket"'


class _DownConnection:
    def cursor(self):
        raise OperationalError(SECRET_DETAIL)


def test_healthz_is_503_when_the_database_fails(client, db, monkeypatch):
    monkeypatch.setattr("loket.web.views.connection", _DownConnection())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    body = response.content.decode()
    assert "db.internal" not in body
    assert "loket" not in body
    assert "5432" not in body


def test_healthz_logs_the_database_error(client, db, monkeypatch, caplog):
    monkeypatch.setattr("loket.web.views.connection", _DownConnection())
    with caplog.at_level("WARNING", logger="loket.web.views"):
        client.get("/healthz")
    assert "db.internal" in caplog.text
