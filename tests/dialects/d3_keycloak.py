# D3, Keycloak (docs/dialects.md, "D3 Keycloak"): the request the provider publishes on
# its page "How to get a Bearer token"
# (POST /auth/realms/Arkane/protocol/openid-connect/token).
#
# The page publishes no client code, only the request (host, path, three form body
# parameters) and a sample response; get_bearer_token() below is that request written
# with requests, nothing added.
# Changed from the page:
#   - host: https://login.arkane.network -> $TESSERA_BASE (realm "Arkane" kept, same case);
#   - credentials: the client_id and client_secret that provision.py created.
# Below the request: every key of the page's sample response is there; the access token
# is a JWT with `kid` whose RS256 signature PyJWT verifies with the realm's certs
# endpoint; the token is used (introspection, /verify); grant_type=refresh_token gives a
# new pair; the first refresh token, presented again, is 400 invalid_grant.

import jwt
import requests

import checks

CLIENT = checks.client("d3")
HOST = checks.BASE  # the page: https://login.arkane.network
REALM_PATH = "/auth/realms/Arkane"
TOKEN_URL = HOST + REALM_PATH + "/protocol/openid-connect/token"

# The keys of the page's sample response.
RESPONSE_KEYS = {
    "access_token",
    "expires_in",
    "refresh_expires_in",
    "refresh_token",
    "token_type",
    "not-before-policy",
    "session_state",
    "scope",
}
PAGE_SCOPE = "view:wallets use:all-wallets whitelabel sign:wallets view:profile save:transaction email profile"


# ---------------------------------------------------------------- the page's request
def get_bearer_token(client_id, client_secret):
    return requests.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )
# ---------------------------------------------------------------- end of the request


def refresh(refresh_token):
    return requests.post(
        TOKEN_URL,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT["client_id"],
            "client_secret": CLIENT["client_secret"],
        },
        timeout=checks.TIMEOUT,
    )


def main():
    report = checks.Report("d3")

    r = report.run("token request is 200", lambda: get_bearer_token(CLIENT["client_id"], CLIENT["client_secret"]))
    if r is None or not report.check("token request is 200", r.status_code == 200, checks.describe(r)):
        report.exit()
    body = r.json()
    print(body)
    missing = RESPONSE_KEYS - body.keys()
    report.check("response has every key of the page's sample", not missing, f"missing {sorted(missing)}")
    report.check("expires_in is 1800", body.get("expires_in") == 1800, repr(body.get("expires_in")))
    report.check(
        "refresh_expires_in is 3456000", body.get("refresh_expires_in") == 3456000, repr(body.get("refresh_expires_in"))
    )
    report.check(
        "token_type is bearer", str(body.get("token_type")).lower() == "bearer", repr(body.get("token_type"))
    )
    report.check(
        "scope is the application's scopes",
        sorted(str(body.get("scope")).split()) == sorted(PAGE_SCOPE.split()),
        repr(body.get("scope")),
    )
    access_token = body.get("access_token", "")

    def signature():
        header = jwt.get_unverified_header(access_token)
        report.check(
            "access token is an RS256 JWT with kid",
            header.get("alg") == "RS256" and bool(header.get("kid")),
            repr(header),
        )
        certs = requests.get(HOST + REALM_PATH + "/protocol/openid-connect/certs", timeout=checks.TIMEOUT)
        jwks = jwt.PyJWKSet.from_dict(certs.json())
        key = next(k for k in jwks.keys if k.key_id == header.get("kid"))
        claims = jwt.decode(
            access_token, key.key, algorithms=["RS256"], options={"verify_aud": False}
        )
        report.check(
            "PyJWT verifies the signature with the certs endpoint's key",
            claims.get("client_id", claims.get("azp", CLIENT["client_id"])) == CLIENT["client_id"],
            repr(claims),
        )

    report.run("PyJWT verifies the signature with the certs endpoint's key", signature)

    auth = (CLIENT["client_id"], CLIENT["client_secret"])
    report.run(
        "introspection says active",
        lambda: checks.introspect(report, access_token, prefix="/realms/Arkane", auth=auth),
    )
    report.run(
        "GET /verify with the bearer token is 200",
        lambda: checks.verify(report, access_token, prefix="/realms/Arkane"),
    )

    def refresh_pair():
        first_refresh = body["refresh_token"]
        r2 = refresh(first_refresh)
        second = r2.json()
        ok = (
            r2.status_code == 200
            and bool(second.get("access_token"))
            and bool(second.get("refresh_token"))
            and second.get("access_token") != access_token
            and second.get("refresh_token") != first_refresh
        )
        report.check("grant_type=refresh_token gives a new token pair", ok, checks.describe(r2))
        if ok:
            checks.introspect(
                report,
                second["access_token"],
                prefix="/realms/Arkane",
                auth=auth,
                what="introspection says the refreshed token is active",
            )
        checks.expect_error(
            report, "the first refresh token again is 400 invalid_grant", refresh(first_refresh), 400, "invalid_grant"
        )

    report.run("grant_type=refresh_token gives a new token pair", refresh_pair)
    report.exit()


if __name__ == "__main__":
    main()
