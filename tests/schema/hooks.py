"""Schemathesis hooks for tests/schema/run.sh (loaded through SCHEMATHESIS_HOOKS).

Random realm names and client_ids almost always answer 404, so schemathesis would
never get past the lookup. These hooks make a share of the generated cases name the
objects run.sh seeded (SCHEMA_SEEDS, a JSON object: admin URL, admin key, realms and
their applications), and put the seeds back when a generated DELETE or a rotation
removes them, so that later cases still find them. Likewise a share of the token,
introspection and revocation forms carry the seeded client's credentials (and token),
so that those endpoints answer more than 401.
"""

import json
import os

import requests
import schemathesis
from hypothesis import strategies as st

SEEDS = json.loads(os.environ["SCHEMA_SEEDS"])
ADMIN = SEEDS["admin_url"].rstrip("/")
HEADERS = {"Authorization": "Bearer " + SEEDS["admin_key"]}
# realm name -> [{"client_id": ..., "body": the ApplicationCreate it was made with}]
REALMS = SEEDS["realms"]
CLIENT = SEEDS.get("client", {})  # only in the public part


def known_pairs():
    """(realm, client_id) for every seeded application, and (realm, None) per realm."""
    pairs = []
    for realm, apps in REALMS.items():
        pairs.append((realm, None))
        pairs.extend((realm, app["client_id"]) for app in apps)
    return pairs


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    """Half of the cases keep what was generated; the others name a seeded object."""
    if not path_parameters or "realm" not in path_parameters:
        return st.just(path_parameters)
    wants_client = "client_id" in path_parameters
    choices = []
    for realm, client_id in known_pairs():
        if wants_client and client_id is None:
            continue
        if not wants_client and client_id is not None:
            continue
        known = dict(path_parameters, realm=realm)
        if wants_client:
            known["client_id"] = client_id
        choices.append(known)
    if not choices:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(choices))


@schemathesis.hook
def flatmap_body(context, body):
    """Half of the forms keep what was generated; the others are what a client of the
    seeded application sends: a client_credentials grant, or its token to introspect or
    revoke."""
    if not CLIENT or not isinstance(body, dict) or not ("grant_type" in body or "token" in body):
        return st.just(body)
    auth = {"client_id": CLIENT["client_id"], "client_secret": CLIENT["client_secret"]}
    if "token" in body:
        known = [dict(auth, token=CLIENT["token"]), dict(body, **auth)]
    else:
        grant = dict(auth, grant_type="client_credentials")
        known = [grant] + [dict(grant, scope=s) for s in ("read", "write", "read write")]
    return st.one_of(st.just(body), st.sampled_from(known))


@schemathesis.hook
def flatmap_headers(context, headers):
    """`/verify` reads a bearer token: half of its cases send one of the seeded client's."""
    if not CLIENT or not headers or "Authorization" not in headers:
        return st.just(headers)
    known = dict(headers, Authorization="Bearer " + CLIENT["verify_token"])
    return st.one_of(st.just(headers), st.just(known))


def reseed():
    """Creates whatever seeded realm or application is missing."""
    for realm, apps in REALMS.items():
        if realm != "default":
            r = requests.get(f"{ADMIN}/admin/v1/realms/{realm}", headers=HEADERS, timeout=10)
            if r.status_code == 404:
                requests.post(
                    f"{ADMIN}/admin/v1/realms", json={"name": realm}, headers=HEADERS, timeout=10
                )
        for app in apps:
            url = f"{ADMIN}/admin/v1/realms/{realm}/applications"
            r = requests.get(f"{url}/{app['client_id']}", headers=HEADERS, timeout=10)
            if r.status_code == 404:
                requests.post(url, json=app["body"], headers=HEADERS, timeout=10)


@schemathesis.hook
def after_call(context, case, response):
    if case.method.upper() == "DELETE" and response.status_code == 204:
        reseed()
