# D5, Basic header + JSON body (docs/dialects.md, "D5 Basic + JSON"): the Python sample
# the provider publishes on its page "Get Access Token" (POST /oauth2/token/).
#
# Changed from the page:
#   - base URL: https://app.podero.com -> $TESSERA_BASE, and, as the page says to
#     "replace the subdomain if you're in a sandbox environment", the request names the
#     sandbox realm's host: a `Host: sandbox.podero.localhost` header is added (the URL
#     is 127.0.0.1, so no name resolution is needed);
#   - credentials: client_id and client_secret are the ones provision.py created;
#   - the sample's module-level code is wrapped in the function page_sample().
# Below the sample: token_type "Bearer", scope "read write", expires_in 36000; the token
# is used (introspection and /verify, on the same host name).

import checks

CLIENT = checks.client("d5")
SANDBOX_HOST = "sandbox.podero.localhost"


def page_sample():
    # ------------------------------------------------------------ the page's sample
    import requests
    import base64

    # Your credentials
    client_id = CLIENT["client_id"]
    client_secret = CLIENT["client_secret"]

    # Encode credentials
    credentials = f"{client_id}:{client_secret}"
    encoded = base64.b64encode(credentials.encode()).decode()

    # Request token
    response = requests.post(
        checks.BASE + '/oauth2/token/',
        headers={
            'Host': SANDBOX_HOST,
            'Authorization': f'Basic {encoded}',
            'Cache-Control': 'no-cache',
            'Content-Type': 'application/json'
        },
        json={'grant_type': 'client_credentials'}
    )

    data = response.json()
    access_token = data['access_token']
    print(f"Access Token: {access_token}")
    # ------------------------------------------------------------ end of the sample
    return data


def main():
    report = checks.Report("d5")
    data = report.run("page sample gets a token", page_sample)
    if data is None:
        report.exit()
    report.check("page sample gets a token", True)
    report.check('token_type is "Bearer"', data.get("token_type") == "Bearer", repr(data.get("token_type")))
    report.check('scope is "read write"', data.get("scope") == "read write", repr(data.get("scope")))
    report.check("expires_in is 36000", data.get("expires_in") == 36000, repr(data.get("expires_in")))

    token = data["access_token"]
    host = {"Host": SANDBOX_HOST}
    auth = (CLIENT["client_id"], CLIENT["client_secret"])
    report.run(
        "introspection says active",
        lambda: checks.introspect(report, token, auth=auth, headers=host),
    )
    report.run("GET /verify with the bearer token is 200", lambda: checks.verify(report, token, headers=host))
    report.exit()


if __name__ == "__main__":
    main()
