# D2, Basic header + form (docs/dialects.md, "D2 Basic + form"): the Python sample the
# provider publishes on its page "Getting a Bearer Token" (POST /passport/oauth/token).
#
# Changed from the page:
#   - base URL: the page's relative '/passport/oauth/token' gets $TESSERA_BASE in front;
#   - credentials: ' <<Authorization>>' becomes ' Basic base64(client_id:client_secret)'
#     (keeping the page's leading space), as the page's Headers table says;
#   - the body: the sample forgets it (it passes `params={}`); it sends
#     `data={'grant_type': 'client_credentials'}` as the page's YAML body section says;
#   - Python 3: `print r.json()` -> `print(r.json())`; the call is wrapped in a function.
# requests (since 2.11) refuses header values with leading whitespace before sending
# anything (InvalidHeader), so the sample as published cannot run with a current
# requests. This file says so on a NOTE line, then runs the same code twice: once with
# requests' header check switched off, so the page's leading-space values go on the wire
# (http.client sends `Authorization:  Basic ...`, as the page's Go sample would), and once
# with the leading spaces removed, which is what a customer does after the error.
# Below the sample: the token is used (introspection with Basic, /verify).

import base64

import requests
import requests.models

import checks

CLIENT = checks.client("d2")
AUTHORIZATION = " Basic " + base64.b64encode(
    f"{CLIENT['client_id']}:{CLIENT['client_secret']}".encode()
).decode()


def page_sample(authorization=AUTHORIZATION, content_type=" application/x-www-form-urlencoded"):
    # ------------------------------------------------------------ the page's sample
    headers = {
      'Content-Type': 'application/x-www-form-urlencoded',
      'Accept': '*/*',
      'Content-Type': content_type,  # noqa: F601 (the page repeats this key)
      'Authorization': authorization
    }

    r = requests.post(checks.BASE + '/passport/oauth/token', data={
      'grant_type': 'client_credentials'
    }, headers = headers)

    print(r.json())
    # ------------------------------------------------------------ end of the sample
    return r


def leading_whitespace_allowed(enabled):
    """Switches requests' refusal of header values with leading whitespace off or on."""
    original = requests.utils.check_header_validity
    requests.models.check_header_validity = (lambda header: None) if enabled else original


def main():
    report = checks.Report("d2")

    try:
        page_sample()
        print("NOTE d2 requests sent the leading-space headers as published", flush=True)
    except requests.exceptions.InvalidHeader as err:
        print(f"NOTE d2 the page's sample as published fails in requests itself: {err}", flush=True)

    def token_of(what, **kwargs):
        r = page_sample(**kwargs)
        body = r.json()
        ok = r.status_code == 200 and isinstance(body.get("access_token"), str)
        report.check(what, ok, checks.describe(r))
        return body.get("access_token")

    leading_whitespace_allowed(True)
    try:
        token = report.run(
            "page sample with leading-space Authorization and Content-Type gets a token",
            lambda: token_of("page sample with leading-space Authorization and Content-Type gets a token"),
        )
    finally:
        leading_whitespace_allowed(False)
    report.run(
        "page sample with the leading spaces removed gets a token",
        lambda: token_of(
            "page sample with the leading spaces removed gets a token",
            authorization=AUTHORIZATION.strip(),
            content_type="application/x-www-form-urlencoded",
        ),
    )

    if token:
        auth = (CLIENT["client_id"], CLIENT["client_secret"])
        report.run("introspection says active", lambda: checks.introspect(report, token, auth=auth))
        report.run("GET /verify with the bearer token is 200", lambda: checks.verify(report, token))
    report.exit()


if __name__ == "__main__":
    main()
