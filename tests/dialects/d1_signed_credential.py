# D1, signed credential (docs/dialects.md, "D1 signed credential"): the Python sample
# the provider publishes on its page "Bearer Token" (POST /v2/token).
#
# Changed from the page:
#   - base URL: https://api.bitmart.com -> $TESSERA_BASE (api_url and the token url);
#   - credentials: api_key, api_secret and private_key come from provision.py and run.sh
#     (private_key is the base64 body of an `openssl genrsa` PKCS#1 key, as the page's
#     prefix/suffix expect);
#   - minimal port to Python 3: `long` -> `int`, print statements -> print(), the message
#     is encoded to bytes before private_encrypt (M2Crypto on Python 3 takes bytes only),
#     and `from M2Crypto import RSA` is added because `from M2Crypto import *` no longer
#     brings in the RSA module;
#   - the page's `if __name__ == '__main__':` body is kept as the function page_main().
# If M2Crypto cannot be imported (or DIALECTS_D1_FALLBACK=1), encrypt_rsa_pri_key is
# replaced by encrypt_rsa_pri_key_fallback: PKCS#1 v1.5 type-1 padding and pow(m, d, n)
# with `cryptography`'s private numbers, byte for byte what RSA_private_encrypt makes.
# Below the sample: the token is used (introspection, /verify), a credential made with
# `openssl rsautl -sign` must work, and five bad credentials must get 401 invalid_client.

import os
import subprocess
import tempfile

import checks

try:
    from M2Crypto import *  # noqa: F403 (the page's import)
    from M2Crypto import RSA
except ImportError:
    RSA = None

# ---------------------------------------------------------------- the page's sample
import time
import base64
import requests
import json

CLIENT = checks.client("d1")


def pem_body(path):
    with open(path, encoding="ascii") as f:
        lines = f.read().strip().splitlines()
    return "\n".join(line for line in lines if not line.startswith("-----"))


api_url = checks.BASE + "/v2/access"
api_key = CLIENT["client_id"]  # please replace with your api key here
api_secret = CLIENT["client_secret"]  # please replace with your api secret here
private_key = pem_body(os.environ["D1_PRIVATE_KEY"])  # please replace with your private key here

def encrypt_rsa_pri_key(message):
    '''
    Encrypt with private key.
    '''

    pem_prefix = '-----BEGIN RSA PRIVATE KEY-----\n'
    pem_suffix = '\n-----END RSA PRIVATE KEY-----'
    private_key_str = '{}{}{}'.format(pem_prefix, private_key, pem_suffix)

    pri_key = RSA.load_key_string(private_key_str)
    # pri_key = RSA.load_key('_pri.pem') # You can also load key from .pem file.
    encrypted = pri_key.private_encrypt(message.encode(), RSA.pkcs1_padding)
    ciphertext = base64.b64encode(encrypted)

    return ciphertext

def get_signed_content(api_key, api_secret):
    timestamp = time.time() * 1000
    signed_content = api_key + ":" + api_secret + ":" + str(int(timestamp))
    return signed_content


def get_access_token(apiKey, client_secret):
    url = checks.BASE + "/v2/token"
    data = {"grant_type": "client_credentials","client_id": apiKey, "client_secret": client_secret}
    response = requests.post(url, data = data)
    print(response.content)
    accessToken = response.json()['access_token']
    return accessToken

def page_main():
    signed_content = get_signed_content(api_key, api_secret)
    client_secret = encrypt_rsa_pri_key(signed_content)

    print("client_secret:")
    print(client_secret)

    access_token = get_access_token(api_key, client_secret)
    print(access_token)
    return client_secret, access_token

# ---------------------------------------------------------------- end of the sample


def private_encrypt_fallback(pem_text, message):
    """RSA_private_encrypt(message, RSA_PKCS1_PADDING) without M2Crypto."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem_text.encode(), password=None)
    numbers = key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (n.bit_length() + 7) // 8
    if len(message) > k - 11:
        raise ValueError("message too long for PKCS#1 v1.5")
    block = b"\x00\x01" + b"\xff" * (k - 3 - len(message)) + b"\x00" + message
    return pow(int.from_bytes(block, "big"), d, n).to_bytes(k, "big")


def encrypt_rsa_pri_key_fallback(message):
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + private_key + "\n-----END RSA PRIVATE KEY-----"
    return base64.b64encode(private_encrypt_fallback(pem, message.encode()))


if RSA is None or os.environ.get("DIALECTS_D1_FALLBACK") == "1":
    PATH = "cryptography fallback"
    m2crypto_encrypt = encrypt_rsa_pri_key if RSA is not None else None
    encrypt_rsa_pri_key = encrypt_rsa_pri_key_fallback
else:
    PATH = "M2Crypto"
    m2crypto_encrypt = encrypt_rsa_pri_key


def fresh_credential(timestamp_ms=None):
    """A new signed credential; a short sleep keeps two of them from sharing a millisecond."""
    time.sleep(0.003)
    if timestamp_ms is None:
        return encrypt_rsa_pri_key(get_signed_content(api_key, api_secret))
    return encrypt_rsa_pri_key(f"{api_key}:{api_secret}:{timestamp_ms}")


def token_request(client_secret):
    return requests.post(
        checks.BASE + "/v2/token",
        data={"grant_type": "client_credentials", "client_id": api_key, "client_secret": client_secret},
        timeout=checks.TIMEOUT,
    )


def main():
    report = checks.Report("d1")

    result = report.run(f"signed credential ({PATH}) gets a token", page_main)
    if result is None:
        report.exit()
    sample_secret, access_token = result
    report.check(f"signed credential ({PATH}) gets a token", bool(access_token), "empty access_token")

    def response_shape():
        r = token_request(fresh_credential())
        body = r.json()
        report.check(
            'response has access_token and "expires_in": 900',
            r.status_code == 200 and isinstance(body.get("access_token"), str) and body.get("expires_in") == 900,
            checks.describe(r),
        )

    report.run('response has access_token and "expires_in": 900', response_shape)

    # The application allows only signed credentials, so introspection uses a new one.
    report.run(
        "introspection says active",
        lambda: checks.introspect(
            report, access_token, data={"client_id": api_key, "client_secret": fresh_credential()}
        ),
    )
    report.run("GET /verify with the bearer token is 200", lambda: checks.verify(report, access_token))

    if m2crypto_encrypt is not None:
        def same_bytes():
            message = get_signed_content(api_key, api_secret)
            ours = encrypt_rsa_pri_key_fallback(message)
            theirs = m2crypto_encrypt(message)
            report.check("cryptography fallback makes the same bytes as M2Crypto", ours == theirs, "they differ")

        report.run("cryptography fallback makes the same bytes as M2Crypto", same_bytes)

    def rsautl():
        with tempfile.TemporaryDirectory() as tmp:
            msg, sig = os.path.join(tmp, "msg"), os.path.join(tmp, "sig")
            time.sleep(0.003)
            with open(msg, "w", encoding="utf-8") as f:
                f.write(get_signed_content(api_key, api_secret))
            subprocess.run(
                ["openssl", "rsautl", "-sign", "-inkey", os.environ["D1_PRIVATE_KEY"], "-in", msg, "-out", sig],
                check=True,
                capture_output=True,
            )
            with open(sig, "rb") as f:
                credential = base64.b64encode(f.read()).decode()
        r = token_request(credential)
        ok = r.status_code == 200 and "access_token" in r.json()
        report.check("credential made by `openssl rsautl -sign` gets a token", ok, checks.describe(r))

    report.run("credential made by `openssl rsautl -sign` gets a token", rsautl)

    def refused(what, make_credential):
        def case():
            checks.expect_error(report, what, token_request(make_credential()), 401, "invalid_client")

        report.run(what, case)

    def other_key_credential():
        with open(os.environ["D1_OTHER_PRIVATE_KEY"], encoding="ascii") as f:
            other_pem = f.read()
        message = get_signed_content(api_key, api_secret).encode()
        if PATH == "M2Crypto":
            encrypted = RSA.load_key_string(other_pem).private_encrypt(message, RSA.pkcs1_padding)
        else:
            encrypted = private_encrypt_fallback(other_pem, message)
        return base64.b64encode(encrypted)

    def truncated():
        credential = fresh_credential().decode()
        return credential[: len(credential) // 2]

    def not_base64():
        credential = fresh_credential().decode()
        return credential[:100] + "!*!*" + credential[104:]

    refused("replayed credential is 401 invalid_client", lambda: sample_secret)
    refused(
        "credential 10 minutes old is 401 invalid_client",
        lambda: fresh_credential(int(time.time() * 1000) - 10 * 60 * 1000),
    )
    refused("credential signed with another key is 401 invalid_client", other_key_credential)
    refused("truncated credential is 401 invalid_client", truncated)
    refused("non-base64 credential is 401 invalid_client", not_base64)

    report.exit()


if __name__ == "__main__":
    main()
