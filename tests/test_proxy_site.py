"""A real site behind a real nginx: the lockout counts the client behind the proxy.

The clients reach nginx from addresses of their own on loopback (127.0.0.2,
127.0.0.3 ...); nginx reaches the site from 127.0.0.1, the one trusted proxy.
"""

from __future__ import annotations

import http.client
import http.cookies
import urllib.parse

import pytest

from tests.nginx import Nginx, available
from tests.sites import Site, csrf_token

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(not available(), reason="nginx is not installed (tests/setup-system)"),
]

LIMIT = 3
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    site = Site(
        "proxied",
        tmp_path_factory.mktemp("proxied"),
        TRUSTED_PROXIES="127.0.0.1",
        LOGIN_FAILURE_LIMIT=str(LIMIT),
    )
    site.start()
    site.shell(
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_user('victim', password={PASSWORD!r})\n"
        f"User.objects.create_user('bystander', password={PASSWORD!r})\n"
    )
    proxy = Nginx(site.url).start()
    yield site, proxy
    proxy.stop()
    site.destroy()


def log_in(proxy: Nginx, source: str, username: str, password: str, **headers: str) -> int:
    """A browser's login from `source` through nginx: the status of the POST's answer."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", proxy.port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request("GET", "/login", headers=headers)
        page = connection.getresponse()
        body = page.read().decode()
        cookies = http.cookies.SimpleCookie()
        for header in page.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": csrf_token(body)}
        )
        connection.request(
            "POST",
            "/login",
            body=form,
            headers={
                **headers,
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items()),
                "Referer": f"{proxy.url}/login",
            },
        )
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def test_one_attackers_failures_lock_his_address_and_the_attacked_account_only(proxied):
    site, proxy = proxied
    answers = [log_in(proxy, "127.0.0.2", "victim", "wrong") for _ in range(LIMIT)]
    assert answers == [200] * (LIMIT - 1) + [429]  # the last failure locks out
    assert log_in(proxy, "127.0.0.2", "bystander", PASSWORD) == 429
    assert log_in(proxy, "127.0.0.3", "victim", PASSWORD) == 429
    assert log_in(proxy, "127.0.0.3", "bystander", PASSWORD) == 302
    counted = site.rows("SELECT ip_address FROM axes_accessattempt")
    assert counted == [("127.0.0.2",)]


def test_a_forged_forwarded_for_does_not_hide_the_attacker(proxied):
    site, proxy = proxied
    answers = [
        log_in(proxy, "127.0.0.4", f"guess{attempt}", "wrong", **{"X-Forwarded-For": forged})
        for attempt, forged in enumerate(("127.0.0.10", "127.0.0.1", "not an address"))
    ]
    assert answers == [200] * (LIMIT - 1) + [429]
    assert log_in(proxy, "127.0.0.4", "bystander", PASSWORD) == 429
    assert log_in(proxy, "127.0.0.5", "bystander", PASSWORD) == 302
    addresses = {row[0] for row in site.rows("SELECT ip_address FROM axes_accessattempt")}
    assert addresses == {"127.0.0.2", "127.0.0.4"}
