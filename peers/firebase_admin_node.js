// firebase-admin (Google's Admin SDK for Node) against the gcm-mock binary started with
// --tls, set up as gcm-mock's README says (the preload google_hosts.js and
// NODE_EXTRA_CA_CERTS): topic management on the Instance ID API, a send to the topic
// reaching its subscribers, sendEach with every field the SDK has (the mock
// refuses unknown names at any level, as FCM does), and a typo refused as FCM refuses it.
// Usage: node --require ./google_hosts.js firebase_admin_node.js BASE_URL
'use strict';
const assert = require('assert');
const { initializeApp, cert } = require('firebase-admin/app');
const { getMessaging } = require('firebase-admin/messaging');

async function main() {
  const base = process.argv[2];
  const get = async (path) => (await fetch(base + path)).json();
  // The recipe: the key file's project and key; Google's hosts are the mock's.
  const key = await get('/_mock/service-account');
  initializeApp({ credential: cert(key) });
  const messaging = getMessaging();
  // The SDK's HTTP/2 transport sends `:scheme: https:`, which the mock's HTTP/2 stack refuses
  // (gcm-mock's README): its HTTP/1.1 transport.
  messaging.enableLegacyHttpTransport();

  const subscribed = await messaging.subscribeToTopic(['tok-1', 'tok-2', 'tok-gone'], 'news');
  assert.deepStrictEqual([subscribed.successCount, subscribed.failureCount], [2, 1], JSON.stringify(subscribed));
  assert.strictEqual(subscribed.errors[0].index, 2);
  assert.strictEqual(subscribed.errors[0].error.code, 'messaging/registration-token-not-registered');

  const name = await messaging.send({ topic: 'news', data: { k: 'v' } });
  assert.match(name, /^projects\/mock-project\/messages\//);
  const inbox = await get('/_mock/inbox');
  const reached = inbox.filter((d) => d.via === '/topics/news').map((d) => d.token).sort();
  assert.deepStrictEqual(reached, ['tok-1', 'tok-2']);
  const unsubscribed = await messaging.unsubscribeFromTopic('tok-1', '/topics/news');
  assert.strictEqual(unsubscribed.successCount, 1);
  assert.deepStrictEqual(await get('/_mock/topics'), { news: ['tok-2'] });

  const everyField = {
    token: 'tok-1',
    data: { k: 'v' },
    notification: { title: 't', body: 'b', imageUrl: 'https://example.com/i.png' },
    android: {
      collapseKey: 'c', priority: 'high', ttl: 3600500, restrictedPackageName: 'com.example', data: { a: '1' },
      notification: {
        title: 't', body: 'b', icon: 'i', color: '#112233', sound: 's', tag: 'g', clickAction: 'OPEN',
        bodyLocKey: 'bk', bodyLocArgs: ['b1'], titleLocKey: 'tk', titleLocArgs: ['t1'], channelId: 'news',
        imageUrl: 'https://example.com/a.png', ticker: 'tick', sticky: true, eventTimestamp: new Date(Date.UTC(2024, 4, 1)),
        localOnly: false, priority: 'max', vibrateTimingsMillis: [500, 1000], defaultVibrateTimings: false,
        defaultSound: true, lightSettings: { color: '#ff000080', lightOnDurationMillis: 200, lightOffDurationMillis: 300 },
        defaultLightSettings: false, visibility: 'private', notificationCount: 3, proxy: 'deny',
      },
      fcmOptions: { analyticsLabel: 'a' }, directBootOk: true,
    },
    apns: {
      headers: { 'apns-priority': '10' },
      payload: {
        aps: {
          alert: { title: 't', subtitle: 's', body: 'b', locKey: 'lk', locArgs: ['x'], launchImage: 'l.png' },
          badge: 7, sound: { critical: true, name: 'alarm.caf', volume: 0.5 }, contentAvailable: true,
          mutableContent: true, category: 'INVITE', threadId: 'th',
        },
        custom: 'app data',
      },
      fcmOptions: { analyticsLabel: 'i', imageUrl: 'https://example.com/i.png' },
      liveActivityToken: 'lat',
    },
    webpush: {
      headers: { Urgency: 'high' }, data: { w: '1' },
      notification: { title: 't', body: 'b', icon: '/i.png', actions: [{ action: 'like', title: 'Like' }], requireInteraction: true },
      fcmOptions: { link: 'https://example.com' },
    },
    fcmOptions: { analyticsLabel: 'all' },
  };
  const messages = [everyField, { topic: 'news', notification: { title: 't' } },
    { condition: "'news' in topics || 'sports' in topics", data: { k: 'v' } }];
  const sent = await messaging.sendEach(messages);
  assert.strictEqual(sent.successCount, messages.length,
    JSON.stringify(sent.responses.map((r) => r.error && r.error.message)));

  // A typo the SDK passes on (it checks types, not names) is refused by the mock, as by FCM.
  const typo = await messaging.sendEach([{ token: 'tok-1', android: { notification: { chanelId: 'c' } } }]);
  assert.strictEqual(typo.failureCount, 1);
  assert.match(typo.responses[0].error.message, /Unknown name "chanelId"/);
  const version = require('firebase-admin').SDK_VERSION;
  console.log(`firebase-admin ${version}: topics, send, sendEach of ${messages.length} messages, a refused typo: ok`);
}

main().catch((error) => { console.error(error); process.exit(1); });
