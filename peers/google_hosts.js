// Preload (node --require) that sends every connection to *.googleapis.com to the gcm-mock
// at GCM_MOCK_ADDR (host:port), keeping the TLS server name, so that a client that
// hard-codes Google's hosts (firebase-admin for Node) talks to the mock started with
// `gcm-mock --tls CERT_FILE`; NODE_EXTRA_CA_CERTS=CERT_FILE makes Node trust it.
'use strict';
const net = require('net');

const [mockHost, mockPort] = (process.env.GCM_MOCK_ADDR || '').split(/:(?=\d+$)/);
if (!mockHost || !mockPort) throw new Error('GCM_MOCK_ADDR must be host:port');
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const options = args[0];
  if (options && typeof options === 'object' && !Array.isArray(options) &&
      typeof options.host === 'string' && options.host.endsWith('.googleapis.com')) {
    // A copy: the TLS layer keeps reading the original's host as the server name.
    args[0] = { ...options, host: mockHost, port: Number(mockPort) };
  }
  return connect.apply(this, args);
};
