"""The official `kaggle` client: imported only once the credentials check out, its errors told in one line."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import DfdcError
from .credentials import (
    LEGACY,
    OAUTH,
    TOKEN,
    Credentials,
    config_file,
    find_credentials,
)

if TYPE_CHECKING:
    from kaggle.api.kaggle_api_extended import KaggleApi

HINTS = {
    401: "the credentials were refused: make a new API token (Kaggle > Settings > API)",
    403: "not allowed: for competition data, accept the competition's rules on kaggle.com first",
    404: "not found: check the owner/slug",
    429: "too many requests: try again later",
}
AUTH_METHODS = {TOKEN: "ACCESS_TOKEN", LEGACY: "LEGACY_API_KEY", OAUTH: "OAUTH"}  # kaggle's AuthMethod names


@contextmanager
def quiet() -> Iterator[None]:
    """The client prints help and warnings on stdout while signing in: dfdc says it in one line instead."""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        yield


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect() -> tuple[KaggleApi, Credentials]:
    """An authenticated client, and the credentials it signed in with, owner included."""
    creds = find_credentials()
    with quiet():  # importing the client signs in once already, and prints help on a problem
        from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.config_dir, api.config = str(config_file().parent), str(config_file())  # fixed at import time otherwise
    handed = {"KAGGLE_API_TOKEN": str(creds.token_file)} if creds.token_file else {}
    with kaggle_errors("sign in to Kaggle"), _environ(handed), quiet():
        try:
            api.authenticate()
        except SystemExit:  # it found nothing after all
            raise DfdcError(f"the kaggle client could not sign in with {creds.source}") from None
    method = str(api.config_values.get(api.CONFIG_NAME_AUTH_METHOD))
    if method != AUTH_METHODS[creds.method]:
        if creds.method == TOKEN:
            raise DfdcError(f"Kaggle does not accept the API token of {creds.source} (expired or revoked?): "
                            "make a new one (Kaggle > Settings > API) or remove it")
        raise DfdcError(f"the kaggle client signed in with {method}, not with {creds.source}")
    username = api.config_values.get(api.CONFIG_NAME_USER)
    if not username:
        raise DfdcError(f"Kaggle did not say whose credentials {creds.source} are")
    return api, replace(creds, username=username)


@contextmanager
def kaggle_errors(what: str) -> Iterator[None]:
    """The client's refusals (ValueError) and HTTP errors as a DfdcError of one line starting with `what`."""
    import requests

    try:
        yield
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else None
        detail = " ".join(str(e).split())
        raise DfdcError(f"{what}: {HINTS.get(status, 'Kaggle answered')} ({detail})") from None
    except requests.ConnectionError:
        raise DfdcError(f"{what}: cannot reach Kaggle (is this machine online?)") from None
    except ValueError as e:
        raise DfdcError(f"{what}: {' '.join(str(e).split())}") from None
