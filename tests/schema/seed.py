"""Fetches the OpenAPI document and seeds the objects the generated cases name.

Usage (with TESSERA_ADMIN_URL and TESSERA_ADMIN_KEY in the environment):

  seed.py admin OPENAPI.json SEEDS.json
      writes the document as served, and for hooks.py the admin URL and key and the
      seeded realms and their applications with the bodies they were created from;
  seed.py public SEEDS.json
      adds the credentials and two access tokens of one more application, in `default`,
      for the public part's token, introspection, revocation and /verify requests. It is
      made after the admin part, whose stateful phase finds every application by
      listing them and may rotate its secret or delete it.
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
    if sys.argv[1] == "admin":
        admin(sys.argv[2], sys.argv[3])
    else:
        public(sys.argv[2])


def admin(openapi_path, seeds_path):
    r = requests.get(f"{ADMIN}/admin/v1/openapi.json", headers=HEADERS, timeout=10)
    if r.status_code != 200:
        sys.exit(f"seed: GET /admin/v1/openapi.json -> {r.status_code} {r.text[:200]}")
    with open(openapi_path, "w", encoding="utf-8") as f:
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
    with open(seeds_path, "w", encoding="utf-8") as f:
        json.dump({"admin_url": ADMIN, "admin_key": KEY, "realms": realms}, f)


def public(seeds_path):
    with open(seeds_path, encoding="utf-8") as f:
        seeds = json.load(f)
    client = post(
        "/admin/v1/realms/default/applications",
        {"name": "schema public", "scopes": ["read", "write"], "refresh_token_ttl": 3600},
    )
    tokens = f"/admin/v1/realms/default/applications/{client['client_id']}/tokens"
    issued = post(tokens, {"ttl": 3600})
    # A second token for /verify, which the generated revocations do not revoke.
    verified = post(tokens, {"ttl": 3600})
    seeds["client"] = {
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "token": issued["access_token"],
        "verify_token": verified["access_token"],
    }
    with open(seeds_path, "w", encoding="utf-8") as f:
        json.dump(seeds, f)


def post(path, body):
    r = requests.post(f"{ADMIN}{path}", json=body, headers=HEADERS, timeout=10)
    if r.status_code != 201:
        sys.exit(f"seed: POST {path} -> {r.status_code} {r.text[:200]}")
    return r.json()


if __name__ == "__main__":
    main()
