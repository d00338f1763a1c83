"""The web process as a merchant's browser uses it: signed in (a session stored in the stage's
database), posting the submit form over plain HTTP with its CSRF token."""

from dataclasses import dataclass

import requests

from tests.faults.processes import Process


@dataclass
class Web:
    """A running web process (gunicorn) and its address."""

    process: Process
    url: str

    def browser(self, user) -> "Browser":
        return Browser(self.url, session_cookie(user))


def session_cookie(user) -> dict[str, str]:
    """Return the cookie of a session signed in as `user`, stored in the stage's database."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


class Browser:
    """A signed-in merchant's browser over plain HTTP: cookies sent by hand, since production
    marks them Secure and `requests` would keep them to HTTPS."""

    def __init__(self, url: str, cookies: dict[str, str]):
        self.url = url
        self.cookies = dict(cookies)
        self.http = requests.Session()

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.url + path, headers=self._headers(), timeout=30)
        self.cookies.update(response.cookies.get_dict())
        return response

    def submit_keys(self, merchant, *, publishable_key: str, secret_key: str) -> int:
        """POST a key pair to the merchant's submit form; return the HTTP status (302: stored)."""
        from django.conf import settings
        from django.urls import reverse

        path = reverse("credentials:submit", kwargs={"slug": merchant.slug})
        if settings.CSRF_COOKIE_NAME not in self.cookies:
            self.get(path)
        response = self.http.post(
            self.url + path,
            data={
                "csrfmiddlewaretoken": self.cookies[settings.CSRF_COOKIE_NAME],
                "publishable_key": publishable_key,
                "secret_key": secret_key,
                "requested_integrations": ["online_payments"],
                "note": "",
            },
            headers=self._headers(),
            allow_redirects=False,
            timeout=60,
        )
        return response.status_code


def submit_each(browser: Browser, merchants, *, kind: str = "sk") -> tuple[list[int], list[str]]:
    """Submit a new key pair for each merchant; return the HTTP statuses and the secrets."""
    statuses, secrets_sent = [], []
    for merchant in merchants:
        publishable, secret = key_pair(kind=kind)
        statuses.append(
            browser.submit_keys(merchant, publishable_key=publishable, secret_key=secret)
        )
        secrets_sent.append(secret)
    return statuses, secrets_sent


def key_pair(mode: str = "test", kind: str = "sk") -> tuple[str, str]:
    """Return a made-up publishable key and secret (or restricted, `kind="rk"`) key."""
    from tests.factories import fake_key

    return fake_key(f"pk_{mode}_"), fake_key(f"{kind}_{mode}_")
