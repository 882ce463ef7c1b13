"""firebase-admin (Google's Admin SDK for Python) against the gcm-mock binary, set up as
gcm-mock's README says: topic management, a send to the topic reaching its subscribers,
send_each with every field the SDK has (the mock refuses unknown names at any level, as FCM
does), and the JSON the SDK writes for those messages, saved for the round-trip check
through gcm-proto's v1::Content. Usage: firebase_admin_python.py OUT_JSON_LINES SEND_URL"""
import datetime
import json
import sys
import urllib.request

import firebase_admin
from firebase_admin import credentials, messaging

base = sys.argv[2].rsplit("/gcm/send", 1)[0]

# --- the recipe (gcm-mock's README) ---
# The mock's key file names its own token endpoint, which google-auth follows. The send URL
# and the Instance ID URL are class attributes; the topic management URL (FCM v1's
# registrations, which 7.x uses) is the messaging service's own.
messaging._MessagingService.FCM_URL = base + "/v1/projects/{0}/messages:send"
messaging._MessagingService.IID_URL = base
key = json.load(urllib.request.urlopen(base + "/_mock/service-account"))
app = firebase_admin.initialize_app(credentials.Certificate(key))
messaging._get_messaging_service(app)._fcm_topic_url = f"{base}/v1/projects/{key['project_id']}/registrations"
# --- end of the recipe ---

subscribed = messaging.subscribe_to_topic(["tok-1", "tok-2", "tok-gone"], "news")
assert (subscribed.success_count, subscribed.failure_count) == (2, 1), [(e.index, e.reason) for e in subscribed.errors]
assert (subscribed.errors[0].index, subscribed.errors[0].reason) == (2, "UNREGISTERED"), vars(subscribed.errors[0])
again = messaging.subscribe_to_topic(["tok-1"], "news")  # 409 ALREADY_EXISTS counts as done
assert again.success_count == 1, [(e.index, e.reason) for e in again.errors]
# The deprecated Instance ID API, which Node, Go and Java still call: the same subscriptions.
legacy = messaging.subscribe_to_topic_legacy(["tok-3", "tok-gone"], "sports")
assert [(e.index, e.reason) for e in legacy.errors] == [(1, "NOT_FOUND")], [(e.index, e.reason) for e in legacy.errors]

name = messaging.send(messaging.Message(topic="news", data={"k": "v"}))
assert name.startswith("projects/mock-project/messages/"), name
inbox = json.load(urllib.request.urlopen(base + "/_mock/inbox"))
reached = sorted(d["token"] for d in inbox if d.get("via") == "/topics/news")
assert reached == ["tok-1", "tok-2"], inbox

unsubscribed = messaging.unsubscribe_from_topic("tok-1", "/topics/news")
assert unsubscribed.success_count == 1, vars(unsubscribed)
topics = json.load(urllib.request.urlopen(base + "/_mock/topics"))
assert topics == {"news": ["tok-2"], "sports": ["tok-3"]}, topics

every_field = messaging.Message(
    token="tok-1",
    data={"k": "v"},
    notification=messaging.Notification(title="t", body="b", image="https://example.com/i.png"),
    android=messaging.AndroidConfig(
        collapse_key="c", priority="high", ttl=datetime.timedelta(seconds=3600.5),
        restricted_package_name="com.example", data={"a": "1"},
        notification=messaging.AndroidNotification(
            title="t", body="b", icon="i", color="#112233", sound="s", tag="g", click_action="OPEN",
            body_loc_key="bk", body_loc_args=["b1"], title_loc_key="tk", title_loc_args=["t1"],
            channel_id="news", image="https://example.com/a.png", ticker="tick", sticky=True,
            event_timestamp=datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc),
            local_only=False, priority="max", vibrate_timings_millis=[500, 1000],
            default_vibrate_timings=False, default_sound=True,
            light_settings=messaging.LightSettings(color="#ff000080", light_on_duration_millis=200,
                                                   light_off_duration_millis=300),
            default_light_settings=False, visibility="private", notification_count=3, proxy="deny"),
        fcm_options=messaging.AndroidFCMOptions(analytics_label="a"),
        direct_boot_ok=True, bandwidth_constrained_ok=True, restricted_satellite_ok=False),
    apns=messaging.APNSConfig(
        headers={"apns-priority": "10"},
        payload=messaging.APNSPayload(
            aps=messaging.Aps(
                alert=messaging.ApsAlert(title="t", subtitle="s", body="b", loc_key="lk", loc_args=["x"],
                                         title_loc_key="tk", title_loc_args=["y"], action_loc_key="ak",
                                         launch_image="l.png", custom_data={"extra": 1}),
                badge=7, sound=messaging.CriticalSound("alarm.caf", critical=True, volume=0.5),
                content_available=True, category="INVITE", thread_id="th", mutable_content=True,
                custom_data={"interruption-level": "time-sensitive"}),
            custom="app data"),
        fcm_options=messaging.APNSFCMOptions(analytics_label="i", image="https://example.com/i.png"),
        live_activity_token="lat"),
    webpush=messaging.WebpushConfig(
        headers={"Urgency": "high"}, data={"w": "1"},
        notification=messaging.WebpushNotification(
            title="t", body="b", icon="/i.png",
            actions=[messaging.WebpushNotificationAction("like", "Like", icon="/like.png")],
            badge="/b.png", data={"any": ["json"]}, direction="rtl", image="/img.png", language="fr",
            renotify=True, require_interaction=True, silent=False, tag="tag",
            timestamp_millis=1700000000000, vibrate=[100, 50], custom_data={"someday": True}),
        fcm_options=messaging.WebpushFCMOptions(link="https://example.com")),
    fcm_options=messaging.FCMOptions(analytics_label="all"),
)
messages = [
    every_field,
    messaging.Message(topic="news", notification=messaging.Notification(title="t")),
    messaging.Message(condition="'news' in topics || 'sports' in topics", data={"k": "v"}),
    messaging.Message(fid="fid-1", android=messaging.AndroidConfig(ttl=60)),
]
sent = messaging.send_each(messages)
errors = [(i, r.exception) for i, r in enumerate(sent.responses) if not r.success]
assert sent.success_count == len(messages), errors

with open(sys.argv[1], "w") as out:
    for message in messages:
        out.write(json.dumps(messaging._MessagingService.encode_message(message)) + "\n")
print(f"firebase-admin {firebase_admin.__version__}: topics, send, send_each of {len(messages)} messages: ok")
