// node-gcm 1.1.4 against gcm-mock: multicast with its own retries, topic, wrong key.
// Usage: node node_gcm.js URL (the mock started with --api-key KEY and scenario.example.toml,
// its scripted 503/503/500 replies already used up).
const assert = require('assert');
const gcm = require('node-gcm');
const url = process.argv[2];
const sender = new gcm.Sender('KEY', { uri: url });
const message = new gcm.Message({ data: { hello: 'world' }, collapseKey: 'k', timeToLive: 60, priority: 'high' });
const tokens = ['tok-1', 'tok-canonical', 'tok-gone', 'tok-invalid', 'tok-flaky'];
sender.send(message, { registrationTokens: tokens }, 3, (err, res) => {
  assert.strictEqual(err, null);
  assert.deepStrictEqual(res.results.map((r) => r.error || 'ok'), ['ok', 'ok', 'NotRegistered', 'InvalidRegistration', 'ok']);
  assert.strictEqual(res.results[1].registration_id, 'tok-canonical-new');
  assert.strictEqual(res.success, 3);
  sender.sendNoRetry(message, { topic: '/topics/news' }, (err2, res2) => {
    assert.strictEqual(err2, null);
    assert.strictEqual(typeof res2.message_id, 'number');
    new gcm.Sender('WRONG', { uri: url }).sendNoRetry(message, ['tok-1'], (err3) => {
      assert.strictEqual(err3, 401);
      console.log('node-gcm 1.1.4: multicast with retries, canonical id, topic and 401 as expected');
    });
  });
});
