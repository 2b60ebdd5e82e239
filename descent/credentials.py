"""Where the CLI and the client find an API token, and the file ``descent login`` keeps them in.

A token is resolved in this order: the one passed (``--token``, ``Client(url, token=...)``),
else ``$DESCENT_TOKEN``, else the one saved for that api's address in
``$XDG_CONFIG_HOME/descent/tokens.json`` (default ``~/.config/descent/tokens.json``): a JSON
object ``{normalized base url: token}``, written with mode 0600 in a 0700 folder, replaced
atomically so a reader never sees half a file.  Standard library only: the client imports it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

# the admin's API token that `descent up` keeps in its data folder (0600), beside the token file
ADMIN_TOKEN_FILE = "admin.token"
TOKEN_ENV = "DESCENT_TOKEN"
PREFIX_CHARS = 12  # the api lists a token by its first characters (core.auth.VISIBLE_CHARS)
FILE_MODE = 0o600
FOLDER_MODE = 0o700


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "descent"


def tokens_path() -> Path:
    return config_dir() / "tokens.json"


def normalize_url(url: str) -> str:
    """The key a base url is saved under: scheme and host lowercased, no trailing slash, no
    ``/api/v1`` (``HTTP://Box:8000/api/v1/`` and ``http://box:8000`` are one api)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    host = parts.netloc.rsplit("@", 1)[-1].lower()  # never the credentials a url may carry
    return f"{parts.scheme.lower()}://{host}{path}"


def load_tokens(path: Path | None = None) -> dict[str, str]:
    """Every saved token by base url; an absent or unreadable file holds none."""
    path = path or tokens_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def saved_token(url: str, path: Path | None = None) -> str | None:
    return load_tokens(path).get(normalize_url(url))


def save_token(url: str, token: str, path: Path | None = None) -> Path:
    """Save ``token`` for ``url`` (replacing the one saved before); returns the file."""
    path = path or tokens_path()
    tokens = load_tokens(path)
    tokens[normalize_url(url)] = token
    _write(path, tokens)
    return path


def forget_token(url: str, path: Path | None = None) -> bool:
    """Remove the token saved for ``url``; whether there was one."""
    path = path or tokens_path()
    tokens = load_tokens(path)
    if tokens.pop(normalize_url(url), None) is None:
        return False
    _write(path, tokens)
    return True


def resolve_token(url: str, token: str | None = None) -> tuple[str | None, str | None]:
    """(the token to send, where it came from) for the api at ``url``: ``token`` itself when
    given (an empty string: send none), else ``$DESCENT_TOKEN``, else the saved one."""
    if token is not None:
        return (token or None), ("argument" if token else None)
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, TOKEN_ENV
    saved = saved_token(url)
    return (saved, str(tokens_path())) if saved else (None, None)


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(path.parent, FOLDER_MODE)  # ours alone, even if it was made before with a wider mode
    write_secret_file(path, json.dumps(tokens, indent=2, sort_keys=True) + "\n")
