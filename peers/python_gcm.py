"""python-gcm 0.4 against gcm-mock: JSON multicast, plain text, topic, wrong key.
Usage: python3 python_gcm.py URL (the mock as for node_gcm.js)."""
import sys

from gcm import GCM
from gcm.gcm import GCMAuthenticationException, GCMNotRegisteredException

url = sys.argv[1]
g = GCM("KEY")
g.url = url
info = g.json_request(
    registration_ids=["tok-1", "tok-canonical", "tok-gone", "tok-invalid", "tok-other-sender"],
    data={"hello": "world"},
    time_to_live=60,
    retries=3,
)
assert dict(info["errors"]) == {
    "NotRegistered": ["tok-gone"],
    "InvalidRegistration": ["tok-invalid"],
    "MismatchSenderId": ["tok-other-sender"],
}, info
assert info["canonical"] == {"tok-canonical": "tok-canonical-new"}, info
assert sorted(info["success"]) == ["tok-1", "tok-canonical"], info
assert g.plaintext_request(registration_id="tok-canonical", data={"hello": "world"}, delay_while_idle=True) == "tok-canonical-new"
try:
    g.plaintext_request(registration_id="tok-gone", data={"a": "b"})
    raise AssertionError("NotRegistered was not reported")
except GCMNotRegisteredException:
    pass
assert isinstance(g.send_topic_message(topic="news", data={"a": "b"}), int)
bad = GCM("WRONG")
bad.url = url
try:
    bad.json_request(registration_ids=["a"], data={"a": "b"})
    raise AssertionError("401 was not reported")
except GCMAuthenticationException:
    pass
print("python-gcm 0.4: multicast, canonical id, plain text, topic and 401 as expected")
