"""google-auth (Google's own Python OAuth2 library) and requests against the gcm-mock
binary's FCM HTTP v1 endpoints: it signs the service account's JWT, exchanges it at the
mock's token endpoint, and sends with the access token. Usage: google_auth_v1.py SEND_URL"""
import json
import sys
import urllib.request

from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

base = sys.argv[1].rsplit("/gcm/send", 1)[0]
# The mock hands out its test key file with its own token_uri.
info = json.load(urllib.request.urlopen(base + "/_mock/service-account"))
credentials = service_account.Credentials.from_service_account_info(
    info, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
)
session = AuthorizedSession(credentials)
send = f"{base}/v1/projects/{info['project_id']}/messages:send"

ok = session.post(send, json={"message": {"token": "tok-1", "data": {"hello": "world"}}})
assert ok.status_code == 200, (ok.status_code, ok.text)
assert ok.json()["name"].startswith("projects/mock-project/messages/0:"), ok.text
assert credentials.token and credentials.expiry, "google-auth kept the mock's token"

gone = session.post(send, json={"message": {"token": "tok-gone"}})
error = gone.json()["error"]
assert gone.status_code == 404 and error["status"] == "NOT_FOUND", gone.text
assert error["details"][0]["errorCode"] == "UNREGISTERED", gone.text

bad = session.post(send, json={"message": {"token": "tok-1", "data": {"n": 1}}})
assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT", bad.text

forged = urllib.request.Request(send, data=b'{"message":{"token":"tok-1"}}', method="POST",
                                headers={"Authorization": "Bearer ya29.forged", "Content-Type": "application/json"})
try:
    urllib.request.urlopen(forged)
    raise AssertionError("a forged token was accepted")
except urllib.error.HTTPError as refused:
    assert refused.code == 401 and json.load(refused)["error"]["status"] == "UNAUTHENTICATED"

print("google-auth (FCM v1): token minted by the mock, send ok, UNREGISTERED, INVALID_ARGUMENT, 401: ok")
