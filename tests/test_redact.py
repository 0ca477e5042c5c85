"""The one redaction helper: what counts as a secret, and that only the display changes."""

from __future__ import annotations

import json

import pytest

from helpers import redact


@pytest.mark.parametrize("name", ["Authorization", "Proxy-Authorization", "Cookie", "X-API-Key",
                                  "X-Auth-Token", "Private-Token", "X-Databricks-Token",
                                  "apikey", "api_key", "client_secret", "access_token",
                                  "password", "db_passwd", "Set-Cookie", "x-amz-security-token"])
def test_secret_names(name: str) -> None:
    assert redact.is_secret_name(name)


@pytest.mark.parametrize("name", ["Content-Type", "run_id", "key", "value", "page_token",
                                  "next_page_token", "experiment_id", "Host", "User-Agent"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not redact.is_secret_name(name)


def test_url_credentials_and_query_values() -> None:
    url = "http://alice:S3cret@127.0.0.1:5000/api?apikey=k1&x=1&client_secret=c2"
    shown = redact.mask_url(url)
    assert shown == "http://****@127.0.0.1:5000/api?apikey=****&x=1&client_secret=****"
    assert redact.mask_url("http://127.0.0.1:5000/api?x=1&y=2") == "http://127.0.0.1:5000/api?x=1&y=2"
    assert redact.host_of(url) == "127.0.0.1:5000"


def test_body_fields_masked_in_place_keeping_everything_else() -> None:
    body = '{"run_id": "r1",  "password":"pw1", "nested": {"client_secret": 12345}, "key": "token"}'
    shown = redact.mask_body(body)
    assert shown == ('{"run_id": "r1",  "password":"****", "nested": {"client_secret": "****"}, '
                     '"key": "token"}')
    assert json.loads(shown)["run_id"] == "r1"
    assert redact.mask_body("user=a&password=pw2&x=1") == "user=a&password=****&x=1"
    assert redact.mask_body('{"broken": "x", "token": "t1"') == '{"broken": "x", "token": "****"'


def test_free_text_and_command_lines() -> None:
    line = "could not reach postgresql://u:pw3@db:5432/mlflow (class password hunter2)"
    assert redact.mask_text(line, ["hunter2"]) == (
        "could not reach postgresql://****@db:5432/mlflow (class password ****)")
    argv = ["mlflow", "server", "--backend-store-uri", "postgresql://u:pw4@db/m",
            "--password", "pw5", "--token=pw6", "--port", "5000"]
    assert redact.mask_argv(argv) == ["mlflow", "server", "--backend-store-uri",
                                      "postgresql://****@db/m", "--password", "****",
                                      "--token=****", "--port", "5000"]


@pytest.mark.parametrize("password", ["pa/ss", "pa#ss", "p?w", "p@ss/x#y", "a%2Fb"])
def test_a_password_with_url_delimiters_is_masked_whole(password: str) -> None:
    """Issue 22 (5): urlsplit ends the authority at the first "/", "?" or "#", which left the
    password (and the host) in the output; the rule masks up to the last "@" before the host."""
    url = f"http://ana:{password}@127.0.0.1:5000/api/2.0/mlflow/runs/get?run_id=1"
    for shown in (redact.mask_url(url), redact.mask_text(f"MLFLOW_TRACKING_URI is {url} today"),
                  redact.mask_argv(["--uri", url])[1],
                  redact.mask_headers([("Location", url)])[0][1]):
        assert password not in shown and "pa" not in shown.split("@")[0], shown
        assert "****@127.0.0.1:5000/api/2.0/mlflow/runs/get?run_id=1" in shown
    assert redact.host_of(url) == "127.0.0.1:5000"


def test_one_list_covers_jwt_sas_signatures_and_password_lists() -> None:
    """Issue 22 (rough edge): ?jwt=, Azure SAS ?sig= and a list-valued "password_list"."""
    assert redact.mask_url("https://acct.blob.core.windows.net/c/b?sv=2022&sig=SAS1&jwt=J2") == (
        "https://acct.blob.core.windows.net/c/b?sv=2022&sig=****&jwt=****")
    body = '{"password_list": ["p1", "p2"], "keep": [1, 2], "x": {"y": {"password": "p3"}}}'
    shown = redact.mask_body(body)
    assert shown == '{"password_list": "****", "keep": [1, 2], "x": {"y": {"password": "****"}}}'
    assert not redact.is_secret_name("design") and not redact.is_secret_name("signal")


def test_preflight_never_takes_a_password_for_the_host() -> None:
    """A password holding "/" (issue 22's case): preflight's Host, and so its findings, show none of it."""
    from helpers import preflight

    verdict = preflight("POST", "http://ana:S3/cr3t99@evil.example:5000/api/2.0/mlflow/runs/log-metric",
                        {"Content-Type": "application/json"}, "{}")
    shown = " ".join(f"{f.message} {f.fix}" for f in verdict.findings) + str(verdict.expected_message)
    assert "cr3t99" not in shown and "S3" not in shown, shown
    assert "evil.example" in shown  # the host the security check names
