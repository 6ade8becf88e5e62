"""What every dialect's test does after its provider's sample code has run.

run.sh starts Tessera, provisions the realms and applications (provision.py) and
then runs each dN_*.py with these environment variables:

    TESSERA_BASE      the public listener, e.g. http://127.0.0.1:41234
    DIALECTS_CLIENTS  a JSON file: {"d1": {"realm", "client_id", "client_secret", ...}, ...}

Each check prints one line, `PASS dN what` or `FAIL dN what: why`; run.sh counts them.
"""

import json
import os
import sys

import requests

BASE = os.environ["TESSERA_BASE"].rstrip("/")
TIMEOUT = 10


def client(dialect):
    """The credentials provision.py created for one dialect."""
    with open(os.environ["DIALECTS_CLIENTS"], encoding="utf-8") as f:
        return json.load(f)[dialect]


class Report:
    """Prints PASS/FAIL lines for one dialect and remembers whether any failed."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.failed = 0

    def check(self, what, ok, why=""):
        if ok:
            print(f"PASS {self.dialect} {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {self.dialect} {what}: {why}", flush=True)
        return ok

    def run(self, what, fn):
        """Runs `fn`, turning an exception into a FAIL line; returns its result or None."""
        try:
            return fn()
        except Exception as err:  # a broken step must not hide the other cases
            self.check(what, False, f"{type(err).__name__}: {err}")
            return None

    def exit(self):
        sys.exit(1 if self.failed else 0)


def describe(response):
    """`STATUS body` of a response, for a FAIL line."""
    return f"HTTP {response.status_code} {response.text[:300]!r}"


def expect_error(report, what, response, status, error):
    """The response is `status` with a JSON body whose `error` is `error`."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    ok = response.status_code == status and isinstance(body, dict) and body.get("error") == error
    return report.check(what, ok, f"want {status} {error}, got {describe(response)}")


def introspect(report, token, *, prefix="", auth=None, data=None, headers=None,
               what="introspection says active"):
    """POST {prefix}/oauth2/introspect with the application's credentials: active."""
    form = {"token": token}
    form.update(data or {})
    r = requests.post(
        f"{BASE}{prefix}/oauth2/introspect",
        data=form,
        auth=auth,
        headers=headers or {},
        timeout=TIMEOUT,
    )
    try:
        body = r.json()
    except ValueError:
        body = {}
    report.check(
        what,
        r.status_code == 200 and body.get("active") is True,
        describe(r),
    )
    return body


def verify(report, token, *, prefix="", headers=None):
    """GET {prefix}/verify with `Authorization: Bearer token`: 200."""
    sent = {"Authorization": f"Bearer {token}"}
    sent.update(headers or {})
    r = requests.get(f"{BASE}{prefix}/verify", headers=sent, timeout=TIMEOUT)
    report.check("GET /verify with the bearer token is 200", r.status_code == 200, describe(r))
    return r
