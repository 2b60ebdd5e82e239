"""The token file and the order a client finds its token in (explicit > ``$DESCENT_TOKEN`` >
the token file), and that the client sends it as ``Authorization: Bearer``."""

from __future__ import annotations

import json
import stat

import httpx
import pytest

from core.auth import VISIBLE_CHARS
from descent import credentials
from descent.client import Client

URL = "http://127.0.0.1:8123"
EXPLICIT, ENV, SAVED = "dsc_explicit", "dsc_from_env", "dsc_saved"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_is_in_the_xdg_config_home(config_home, monkeypatch, tmp_path):
    assert credentials.tokens_path() == config_home / "descent" / "tokens.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert credentials.tokens_path() == tmp_path / "home" / ".config" / "descent" / "tokens.json"


def test_saved_tokens_are_readable_by_their_owner_only(config_home):
    config_home.mkdir(mode=0o755)
    (config_home / "descent").mkdir(mode=0o755)  # made before, too open: tightened
    path = credentials.save_token(URL, SAVED)
    assert path == credentials.tokens_path()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    credentials.save_token("http://other:1", "dsc_other")
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {URL: SAVED, "http://other:1": "dsc_other"}
    assert [p.name for p in path.parent.iterdir()] == ["tokens.json"]  # no temporary file left


def test_forget_removes_one_address(config_home):
    credentials.save_token(URL, SAVED)
    credentials.save_token("http://other:1", "dsc_other")
    assert credentials.forget_token(URL + "/") is True
    assert credentials.forget_token(URL) is False
    assert credentials.load_tokens() == {"http://other:1": "dsc_other"}


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '"dsc_x"'])
def test_an_unreadable_file_holds_no_token(config_home, content):
    path = credentials.tokens_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert credentials.saved_token(URL) is None
    credentials.save_token(URL, SAVED)  # and saving replaces it
    assert credentials.load_tokens() == {URL: SAVED}


def test_the_secret_file_is_0600(tmp_path):
    path = tmp_path / "data" / "admin.token"
    credentials.write_secret_file(path, "dsc_x\n")
    assert mode(path) == 0o600 and path.read_text() == "dsc_x\n"


@pytest.mark.parametrize(
    "url, key",
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("HTTP://GPU-Box:8000/api/v1/", "http://gpu-box:8000"),
        ("https://user:pw@box.example/descent/", "https://box.example/descent"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_addresses_are_normalized(url, key):
    assert credentials.normalize_url(url) == key


@pytest.mark.parametrize(
    "explicit, env, saved, sent, source",
    [
        (EXPLICIT, ENV, SAVED, EXPLICIT, "argument"),
        (None, ENV, SAVED, ENV, "DESCENT_TOKEN"),
        (None, None, SAVED, SAVED, "file"),
        (None, "", SAVED, SAVED, "file"),  # an empty variable is no token
        (None, None, None, None, None),
        ("", ENV, SAVED, None, None),  # an empty explicit token: send none
    ],
)
def test_a_client_sends_the_first_token_it_finds(monkeypatch, explicit, env, saved, sent, source):
    if env is not None:
        monkeypatch.setenv("DESCENT_TOKEN", env)
    if saved is not None:
        credentials.save_token(URL + "/api/v1", saved)  # saved under another spelling of the address
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"status": "ok"})

    with Client(URL, explicit, transport=httpx.MockTransport(answer)) as client:
        client.health()
        assert client.token == sent
        expected_source = str(credentials.tokens_path()) if source == "file" else source
        assert client.token_source == expected_source
    assert seen == [f"Bearer {sent}" if sent else None]


def test_a_token_saved_for_another_address_is_not_sent():
    credentials.save_token("http://127.0.0.1:9999", SAVED)
    with Client(URL) as client:
        assert client.token is None


def test_logout_finds_a_token_by_the_prefix_the_api_lists():
    assert credentials.PREFIX_CHARS == VISIBLE_CHARS
