"""Fetches the OpenAPI document and seeds the objects the generated cases name.

Usage: seed.py OPENAPI.json SEEDS.json  (with TESSERA_ADMIN_URL and TESSERA_ADMIN_KEY in
the environment). Writes the document as served, and for hooks.py the admin URL and
key, the seeded realms and their applications with the bodies they were created from,
and the credentials and an access token of one more application, in `default` (which
cannot be deleted) and named to no generated case of the admin part, for the public
part's token, introspection and revocation requests.
"""

import json
import os
import sys

import requests

ADMIN = os.environ["TESSERA_ADMIN_URL"].rstrip("/")
KEY = os.environ["TESSERA_ADMIN_KEY"]
HEADERS = {"Authorization": f"Bearer {KEY}"}

SEED_REALM = "schema-seed"
APPLICATIONS = {
    "default": [
        {"client_id": "schema-default-app", "name": "schema default", "scopes": ["read", "write"]},
    ],
    SEED_REALM: [
        {"client_id": "schema-app", "name": "schema app", "scopes": ["read"]},
        {
            "client_id": "schema-opaque-app",
            "name": "schema opaque",
            "token_format": "opaque",
            "refresh_token_ttl": 3600,
        },
    ],
}


def main():
    r = requests.get(f"{ADMIN}/admin/v1/openapi.json", headers=HEADERS, timeout=10)
    if r.status_code != 200:
        sys.exit(f"seed: GET /admin/v1/openapi.json -> {r.status_code} {r.text[:200]}")
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write(r.text)

    r = requests.post(f"{ADMIN}/admin/v1/realms", json={"name": SEED_REALM}, headers=HEADERS, timeout=10)
    if r.status_code != 201:
        sys.exit(f"seed: POST /admin/v1/realms -> {r.status_code} {r.text[:200]}")
    realms = {}
    for realm, apps in APPLICATIONS.items():
        realms[realm] = []
        for body in apps:
            url = f"{ADMIN}/admin/v1/realms/{realm}/applications"
            r = requests.post(url, json=body, headers=HEADERS, timeout=10)
            if r.status_code != 201:
                sys.exit(f"seed: POST {url} -> {r.status_code} {r.text[:200]}")
            realms[realm].append({"client_id": body["client_id"], "body": body})
    client = post(
        "/admin/v1/realms/default/applications",
        {
            "client_id": "schema-public-client",
            "name": "schema public",
            "scopes": ["read", "write"],
            "refresh_token_ttl": 3600,
        },
    )
    issued = post(
        "/admin/v1/realms/default/applications/schema-public-client/tokens",
        {"ttl": 3600},
    )
    seeds = {
        "admin_url": ADMIN,
        "admin_key": KEY,
        "realms": realms,
        "client": {
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "token": issued["access_token"],
        },
    }
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(seeds, f)


def post(path, body):
    r = requests.post(f"{ADMIN}{path}", json=body, headers=HEADERS, timeout=10)
    if r.status_code != 201:
        sys.exit(f"seed: POST {path} -> {r.status_code} {r.text[:200]}")
    return r.json()


if __name__ == "__main__":
    main()
