"""The official `kaggle` client: imported only once the credentials check out, its errors told in one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import DfdcError
from .credentials import Credentials, config_file, find_credentials

if TYPE_CHECKING:
    from kaggle.api.kaggle_api_extended import KaggleApi

HINTS = {
    401: "the API token was refused: make a new one (Kaggle > Settings > API)",
    403: "not allowed: for competition data, accept the competition's rules on kaggle.com first",
    404: "not found: check the owner/slug",
    429: "too many requests: try again later",
}


def connect() -> tuple[KaggleApi, Credentials]:
    """An authenticated client and the credentials it uses (checked first: its import exits on a problem)."""
    creds = find_credentials()
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.config_dir, api.config = str(config_file().parent), str(config_file())  # fixed at import time otherwise
    api.authenticate()
    return api, creds


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
