# D4, Ory Hydra style (docs/dialects.md, "D4 Hydra style"): the Python sample the
# provider publishes on its page "Getting the Access Token"
# (POST https://oauth2.bitquery.io/oauth2/token with scope=api).
#
# Changed from the page:
#   - base URL: https://oauth2.bitquery.io -> $TESSERA_BASE/realms/bitquery (the realm's
#     own path prefix; the GraphQL URL is left alone, it is never called);
#   - credentials: YOUR_ID_HERE and YOUR_SECRET_HERE in the raw payload string become the
#     client_id and client_secret that provision.py created (pasted in as they are, as a
#     customer would);
#   - the page's `//use the token to send a request` is a Python syntax error: it became a
#     `#` comment, and `return resp` was added so that the test can use the token.
# Below the sample: the response has exactly the sample response's keys (access_token
# starting with ory_at_, expires_in 2627999, scope "api", token_type "bearer"); the token
# is used (introspection, /verify); without scope=api the answer is 400 invalid_scope.

import checks

CLIENT = checks.client("d4")
BASE_URL = checks.BASE + "/realms/bitquery"  # the page: https://oauth2.bitquery.io
YOUR_ID_HERE = CLIENT["client_id"]
YOUR_SECRET_HERE = CLIENT["client_secret"]

# ---------------------------------------------------------------- the page's sample
import requests
import json


def oAuth_example():

  url = BASE_URL + "/oauth2/token"

  payload = f'grant_type=client_credentials&client_id={YOUR_ID_HERE}&client_secret={YOUR_SECRET_HERE}&scope=api'

  headers = {'Content-Type': 'application/x-www-form-urlencoded'}

  response = requests.request("POST", url, headers=headers, data=payload)
  resp = json.loads(response.text)
  print(resp)
  access_token=resp['access_token']

  url_graphql = "https://graphql.bitquery.io"
  headers_graphql = {
      'Content-Type': 'application/json',
      'Authorization': f'Bearer {access_token}'
  }

  #use the token to send a request
  return resp


# oAuth_example()  (called from main() below)
# ---------------------------------------------------------------- end of the sample


def main():
    report = checks.Report("d4")
    resp = report.run("page sample gets a token", oAuth_example)
    if resp is None:
        report.exit()
    report.check("page sample gets a token", True)
    keys = {"access_token", "expires_in", "scope", "token_type"}
    report.check("response keys are exactly the sample's", set(resp) == keys, f"got {sorted(resp)}")
    token = resp.get("access_token", "")
    report.check("access_token starts with ory_at_", token.startswith("ory_at_"), repr(token[:20]))
    report.check("expires_in is 2627999", resp.get("expires_in") == 2627999, repr(resp.get("expires_in")))
    report.check('scope is "api"', resp.get("scope") == "api", repr(resp.get("scope")))
    report.check('token_type is "bearer"', resp.get("token_type") == "bearer", repr(resp.get("token_type")))

    auth = (CLIENT["client_id"], CLIENT["client_secret"])
    report.run(
        "introspection says active",
        lambda: checks.introspect(report, token, prefix="/realms/bitquery", auth=auth),
    )
    report.run(
        "GET /verify with the bearer token is 200",
        lambda: checks.verify(report, token, prefix="/realms/bitquery"),
    )

    def without_scope():
        r = requests.post(
            BASE_URL + "/oauth2/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            data=f"grant_type=client_credentials&client_id={YOUR_ID_HERE}&client_secret={YOUR_SECRET_HERE}",
            timeout=checks.TIMEOUT,
        )
        checks.expect_error(report, "without scope=api is 400 invalid_scope", r, 400, "invalid_scope")

    report.run("without scope=api is 400 invalid_scope", without_scope)
    report.exit()


if __name__ == "__main__":
    main()
