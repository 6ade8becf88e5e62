"""Creates the realms and applications the five dialects need, through the admin API.

Usage: provision.py OUT.json  (with TESSERA_ADMIN_URL, TESSERA_ADMIN_KEY and
D1_PUBLIC_KEY, the path of the RSA public key PEM for D1, in the environment).
Writes {"d1": {"realm", "client_id", "client_secret"}, ...} to OUT.json.
"""

import json
import os
import sys

import requests

ADMIN = os.environ["TESSERA_ADMIN_URL"].rstrip("/")
HEADERS = {"Authorization": f"Bearer {os.environ['TESSERA_ADMIN_KEY']}"}

# The scopes of the Keycloak page's sample response.
ARKANE_SCOPES = [
    "view:wallets",
    "use:all-wallets",
    "whitelabel",
    "sign:wallets",
    "view:profile",
    "save:transaction",
    "email",
    "profile",
]

REALMS = [
    {"name": "Arkane", "signing_alg": "RS256"},
    {
        "name": "bitquery",
        "token_format": "opaque",
        "token_prefix": "ory_at_",
        "token_type": "bearer",
    },
    {"name": "podero-sandbox", "hosts": ["sandbox.podero.localhost"]},
]


def applications():
    with open(os.environ["D1_PUBLIC_KEY"], encoding="ascii") as f:
        d1_public_key = f.read()
    return {
        "d1": (
            "default",
            {
                "name": "d1-signed-credential",
                "auth_methods": ["signed_credential"],
                "public_key": d1_public_key,
                "token_ttl": 900,
            },
        ),
        "d2": ("default", {"name": "d2-passport"}),
        "d3": (
            "Arkane",
            {
                "name": "d3-keycloak",
                "scopes": ARKANE_SCOPES,
                "token_ttl": 1800,
                "refresh_token_ttl": 3456000,
            },
        ),
        "d4": (
            "bitquery",
            {
                "name": "d4-hydra",
                "scopes": ["api"],
                "scope_required": True,
                "token_ttl": 2627999,
            },
        ),
        "d5": (
            "podero-sandbox",
            {"name": "d5-podero", "scopes": ["read", "write"], "token_ttl": 36000},
        ),
    }


def post(path, body):
    r = requests.post(f"{ADMIN}{path}", json=body, headers=HEADERS, timeout=10)
    if r.status_code != 201:
        sys.exit(f"provision: POST {path} {json.dumps(body)[:200]} -> {r.status_code} {r.text}")
    return r.json()


def main():
    for realm in REALMS:
        post("/admin/v1/realms", realm)
    clients = {}
    for dialect, (realm, app) in applications().items():
        created = post(f"/admin/v1/realms/{realm}/applications", app)
        clients[dialect] = {
            "realm": realm,
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
        }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(clients, f)


if __name__ == "__main__":
    main()
