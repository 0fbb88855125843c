#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// The S3 server of hoard's tests: s3rver (a real S3 implementation on the
// local file system) behind a front that checks every request the way AWS S3
// does before s3rver sees it.  s3rver 3.7.1 itself does not verify SigV4
// signatures nor any payload digest, so this front does:
//
//   - the Authorization header (AWS4-HMAC-SHA256 only): known access key,
//     credential scope <date>/<region>/s3/aws4_request with the expected
//     region, x-amz-date within 15 minutes, host + x-amz-date +
//     x-amz-content-sha256 and every x-amz-* header signed, session token
//     when one is configured; then the signature, recomputed with
//     @smithy/signature-v4 (the AWS SDK for JavaScript's signer) over the
//     canonical form of the request as S3 builds it: each path segment
//     decoded and RFC 3986-encoded again, the query decoded and handed to the
//     signer as key/value pairs, only the signed headers.  Any difference is
//     403 SignatureDoesNotMatch with the StringToSign and CanonicalRequest
//     in the error document, as S3 does.
//   - x-amz-content-sha256 against the body (400 XAmzContentSHA256Mismatch),
//     Content-MD5 (400 InvalidDigest / BadDigest), x-amz-checksum-sha256
//     (400 BadDigest).
//
// Good requests go to s3rver with the Authorization header removed.
//
// Faults for retry tests are queued through an unauthenticated admin path
// (bucket names cannot start with "_"):
//   POST /__hoard_test/faults  JSON list of {type, count, method?, status?, code?}
//       type "status": answer status/code (e.g. 503 SlowDown) instead
//            "reset":  reset the TCP connection without answering
//            "stall":  never answer (until the client goes away)
//            "truncate": send the headers and half of the body, then close
//            "corrupt": flip one byte of the response body
//            "delay":  answer normally after ms milliseconds (default 5000)
//   POST /__hoard_test/chaos   JSON {rate, seed?, method?, types?, ms?}: from
//       then on each request (of that method) gets, with probability rate,
//       one fault drawn from types (default: 503 SlowDown, 500
//       InternalError, reset, truncate, a 5 s delay), from a PRNG seeded
//       with seed; {"rate": 0} ends it.  Queued faults come first.
//   GET  /__hoard_test/stats   JSON counters; DELETE resets faults, chaos and
//       counters
//
// Usage: node signer-proxy.js --dir DIR --access-key AK --secret-key SK
//            [--session-token T] [--region R] [--bucket NAME]... [--port N]
// Prints "READY <port>" on stdout once both servers listen on 127.0.0.1.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const S3rver = require('s3rver');
const { SignatureV4, getCanonicalQuery } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

const MAX_SKEW_MS = 15 * 60 * 1000;
const EMPTY_SHA256 = crypto.createHash('sha256').digest('hex');

function parseArgs(argv) {
  const opts = { port: 0, region: 'us-east-1', buckets: [], sessionToken: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--dir': opts.dir = v; i++; break;
      case '--access-key': opts.accessKey = v; i++; break;
      case '--secret-key': opts.secretKey = v; i++; break;
      case '--session-token': opts.sessionToken = v; i++; break;
      case '--region': opts.region = v; i++; break;
      case '--bucket': opts.buckets.push(v); i++; break;
      case '--port': opts.port = Number(v); i++; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!opts.dir || !opts.accessKey || !opts.secretKey)
    throw new Error('--dir, --access-key and --secret-key are required');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

const CHAOS_TYPES = [
  { type: 'status', status: 503, code: 'SlowDown' },
  { type: 'status', status: 500, code: 'InternalError', message: 'We encountered an internal error.' },
  { type: 'reset' },
  { type: 'truncate' },
  { type: 'delay', ms: 5000 },
];

// mulberry32: a small seeded PRNG, so a chaos run can be replayed.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const state = {
  faults: [],
  chaos: null,   // {rate, method, types, rand}
  stats: newStats(),
};

function newStats() {
  return { requests: 0, forwarded: 0, auth_failures: 0, digest_failures: 0,
           faults_fired: 0, chaos_fired: 0, by_method: {} };
}

function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({
    '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
}

class S3Fail extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

function sendError(req, res, err) {
  const requestId = crypto.randomBytes(8).toString('hex').toUpperCase();
  let body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' +
    `<Code>${xmlEscape(err.code)}</Code><Message>${xmlEscape(err.message)}</Message>`;
  for (const [k, v] of Object.entries(err.extra))
    body += `<${k}>${xmlEscape(v)}</${k}>`;
  body += `<RequestId>${requestId}</RequestId></Error>`;
  const buf = Buffer.from(body);
  res.writeHead(err.status, {
    'Content-Type': 'application/xml',
    'Content-Length': buf.length,
    'x-amz-request-id': requestId,
  });
  res.end(req.method === 'HEAD' ? undefined : buf);
}

function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function decode(s, what) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    throw new S3Fail(400, 'InvalidURI', `Couldn't parse the specified URI (${what}).`);
  }
}

// S3's canonical URI: every segment decoded, then encoded again (RFC 3986,
// '/' kept, no dot-segment normalization, no double encoding).
function canonicalPath(rawPath) {
  return rawPath.split('/').map((seg) => rfc3986(decode(seg, 'path'))).join('/');
}

function parseQuery(rawQuery) {
  const query = {};
  if (!rawQuery)
    return query;
  for (const part of rawQuery.split('&')) {
    if (part === '')
      continue;
    const eq = part.indexOf('=');
    const k = decode(eq < 0 ? part : part.slice(0, eq), 'query');
    const v = decode(eq < 0 ? '' : part.slice(eq + 1), 'query');
    if (k in query)
      query[k] = [].concat(query[k], v);
    else
      query[k] = v;
  }
  return query;
}

function parseAuthorization(value) {
  const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(value);
  if (!m)
    throw new S3Fail(400, 'InvalidArgument', 'Unsupported Authorization Type');
  const parts = {};
  for (const comp of m[1].split(',')) {
    const c = comp.trim();
    const eq = c.indexOf('=');
    if (eq < 0)
      throw new S3Fail(400, 'AuthorizationHeaderMalformed',
        'The authorization header is malformed.');
    parts[c.slice(0, eq)] = c.slice(eq + 1);
  }
  for (const k of ['Credential', 'SignedHeaders', 'Signature'])
    if (!parts[k])
      throw new S3Fail(400, 'AuthorizationHeaderMalformed',
        `The authorization header is malformed; missing ${k}.`);
  const cred = parts.Credential.split('/');
  if (cred.length !== 5)
    throw new S3Fail(400, 'AuthorizationHeaderMalformed',
      'The authorization header is malformed; the Credential is mal-formed.');
  return {
    accessKey: cred[0], date: cred[1], region: cred[2], service: cred[3],
    terminator: cred[4], signedHeaders: parts.SignedHeaders.split(';'),
    signature: parts.Signature,
  };
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m)
    return null;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function verifySignature(req) {
  const h = req.headers;
  if (!h.authorization)
    throw new S3Fail(403, 'AccessDenied', 'Access Denied');
  const auth = parseAuthorization(h.authorization);
  if (auth.accessKey !== opts.accessKey)
    throw new S3Fail(403, 'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.');
  if (auth.service !== 's3' || auth.terminator !== 'aws4_request')
    throw new S3Fail(400, 'AuthorizationHeaderMalformed',
      'The authorization header is malformed; incorrect service or terminator.');
  if (auth.region !== opts.region)
    throw new S3Fail(400, 'AuthorizationHeaderMalformed',
      `The authorization header is malformed; the region '${auth.region}' is wrong; ` +
      `expecting '${opts.region}'`);
  const when = parseAmzDate(h['x-amz-date']);
  if (!when)
    throw new S3Fail(403, 'AccessDenied',
      'AWS authentication requires a valid Date or x-amz-date header');
  if (Math.abs(Date.now() - when.getTime()) > MAX_SKEW_MS)
    throw new S3Fail(403, 'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.');
  if (h['x-amz-date'].slice(0, 8) !== auth.date)
    throw new S3Fail(403, 'SignatureDoesNotMatch',
      'The credential date does not match the x-amz-date header.');
  if (!('x-amz-content-sha256' in h))
    throw new S3Fail(400, 'InvalidRequest',
      'Missing required header for this request: x-amz-content-sha256');
  const signed = new Set(auth.signedHeaders);
  for (const name of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!signed.has(name))
      throw new S3Fail(403, 'AccessDenied',
        `There were headers present in the request which were not signed: ${name}`);
  for (const name of Object.keys(h))
    if (name.startsWith('x-amz-') && !signed.has(name))
      throw new S3Fail(403, 'AccessDenied',
        `There were headers present in the request which were not signed: ${name}`);
  const sorted = [...auth.signedHeaders].sort();
  if (sorted.join(';') !== auth.signedHeaders.join(';'))
    throw new S3Fail(403, 'SignatureDoesNotMatch', 'SignedHeaders are not sorted.');
  if (opts.sessionToken !== null && h['x-amz-security-token'] !== opts.sessionToken)
    throw new S3Fail(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');

  const headers = {};
  for (const name of auth.signedHeaders) {
    if (!(name in h))
      throw new S3Fail(403, 'SignatureDoesNotMatch', `Signed header ${name} is missing.`);
    headers[name] = h[name];
  }
  const qpos = req.url.indexOf('?');
  const rawPath = qpos < 0 ? req.url : req.url.slice(0, qpos);
  const rawQuery = qpos < 0 ? '' : req.url.slice(qpos + 1);
  const request = {
    method: req.method,
    protocol: 'http:',
    hostname: (h.host || '').replace(/:\d+$/, ''),
    path: canonicalPath(rawPath),
    query: parseQuery(rawQuery),
    headers,
  };
  const signer = new SignatureV4({
    credentials: { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey },
    region: opts.region,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,   // S3: segments encoded once, no normalization
    applyChecksum: false,
  });
  const expected = await signer.sign(request, {
    signingDate: when,
    signableHeaders: signed,
  });
  const m = /Signature=([0-9a-f]{64})$/.exec(expected.headers.authorization);
  const sh = /SignedHeaders=([^,]*),/.exec(expected.headers.authorization);
  if (!m || m[1] !== auth.signature || sh[1] !== auth.signedHeaders.join(';')) {
    // What S3 puts in its error document: the client may compare.
    const canonicalHeaders = auth.signedHeaders.map((n) =>
      `${n}:${headers[n].replace(/[ \t]+/g, ' ').trim()}\n`).join('');
    const canonicalRequest = [req.method, request.path, getCanonicalQuery(request),
      canonicalHeaders, auth.signedHeaders.join(';'), h['x-amz-content-sha256']].join('\n');
    const stringToSign = ['AWS4-HMAC-SHA256', h['x-amz-date'],
      `${auth.date}/${auth.region}/s3/aws4_request`,
      crypto.createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
    throw new S3Fail(403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. ' +
      'Check your key and signing method.',
      { AWSAccessKeyId: auth.accessKey, StringToSign: stringToSign,
        CanonicalRequest: canonicalRequest });
  }
}

function verifyBody(req, body) {
  const h = req.headers;
  const declared = h['x-amz-content-sha256'];
  if (/^STREAMING-/.test(declared))
    throw new S3Fail(501, 'NotImplemented', 'aws-chunked uploads are not supported here.');
  if (declared !== 'UNSIGNED-PAYLOAD') {
    if (!/^[0-9a-f]{64}$/.test(declared))
      throw new S3Fail(400, 'InvalidArgument',
        'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, or a valid sha256 value.');
    const actual = crypto.createHash('sha256').update(body).digest('hex');
    if (actual !== declared)
      throw new S3Fail(400, 'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        { ClientComputedContentSHA256: declared, S3ComputedContentSHA256: actual });
  }
  if ('content-md5' in h) {
    const given = Buffer.from(h['content-md5'], 'base64');
    if (given.length !== 16)
      throw new S3Fail(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
    if (!given.equals(crypto.createHash('md5').update(body).digest()))
      throw new S3Fail(400, 'BadDigest',
        'The Content-MD5 you specified did not match what we received.');
  }
  if ('x-amz-checksum-sha256' in h) {
    const actual = crypto.createHash('sha256').update(body).digest('base64');
    if (actual !== h['x-amz-checksum-sha256'])
      throw new S3Fail(400, 'BadDigest',
        'The SHA256 you specified did not match the calculated checksum.');
  }
  if (body.length === 0 && declared !== 'UNSIGNED-PAYLOAD' && declared !== EMPTY_SHA256)
    throw new S3Fail(400, 'XAmzContentSHA256Mismatch', 'Empty body, non-empty hash.');
}

function takeFault(method) {
  const f = state.faults.find((x) => x.count > 0 && (!x.method || x.method === method));
  if (!f) {
    const c = state.chaos;
    if (!c || (c.method && c.method !== method) || c.rand() >= c.rate)
      return null;
    state.stats.faults_fired++;
    state.stats.chaos_fired++;
    return c.types[Math.floor(c.rand() * c.types.length)];
  }
  f.count--;
  state.stats.faults_fired++;
  return f;
}

function forward(req, res, body, fault, s3port) {
  const headers = { ...req.headers };
  delete headers.authorization;
  headers['content-length'] = String(body.length);
  delete headers['transfer-encoding'];
  const up = http.request({ host: '127.0.0.1', port: s3port, method: req.method,
    path: req.url, headers }, (ur) => {
    state.stats.forwarded++;
    log(req, ur.statusCode);
    if (!fault) {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
      return;
    }
    const parts = [];
    ur.on('data', (d) => parts.push(d));
    ur.on('end', () => {
      const data = Buffer.concat(parts);
      res.writeHead(ur.statusCode, ur.headers);
      if (fault.type === 'truncate') {
        res.write(data.subarray(0, data.length >> 1), () => res.socket.destroy());
      } else {  // corrupt
        if (data.length > 0)
          data[data.length >> 1] ^= 0x40;
        res.end(data);
      }
    });
  });
  up.on('error', (e) => {
    sendError(req, res, new S3Fail(502, 'InternalError', `backend: ${e.message}`));
  });
  up.end(body);
}

function log(req, status) {
  process.stderr.write(`${new Date().toISOString()} ${req.method} ${req.url} ${status}\n`);
}

async function admin(req, res, body) {
  const send = (obj) => {
    const buf = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': buf.length });
    res.end(buf);
  };
  if (req.method === 'POST' && req.url === '/__hoard_test/faults') {
    for (const f of JSON.parse(body.toString() || '[]'))
      state.faults.push({ count: 1, ...f });
    return send({ queued: state.faults.length });
  }
  if (req.method === 'POST' && req.url === '/__hoard_test/chaos') {
    const c = JSON.parse(body.toString() || '{}');
    state.chaos = c.rate > 0 ? {
      rate: c.rate, method: c.method || null,
      types: (c.types || CHAOS_TYPES).map((t) => (t.type === 'delay' && c.ms ? { ...t, ms: c.ms } : t)),
      rand: prng(c.seed === undefined ? 1 : c.seed),
    } : null;
    return send({ chaos: state.chaos !== null });
  }
  if (req.method === 'GET' && req.url === '/__hoard_test/stats')
    return send(state.stats);
  if (req.method === 'DELETE' && req.url === '/__hoard_test/stats') {
    state.faults = [];
    state.chaos = null;
    state.stats = newStats();
    return send({});
  }
  res.writeHead(404);
  res.end();
}

async function handle(req, res, s3port) {
  const parts = [];
  for await (const d of req)
    parts.push(d);
  const body = Buffer.concat(parts);
  if (req.url.startsWith('/__hoard_test/'))
    return admin(req, res, body);
  state.stats.requests++;
  state.stats.by_method[req.method] = (state.stats.by_method[req.method] || 0) + 1;
  try {
    await verifySignature(req);
  } catch (e) {
    if (!(e instanceof S3Fail))
      throw e;
    state.stats.auth_failures++;
    log(req, `${e.status} ${e.code}`);
    return sendError(req, res, e);
  }
  try {
    verifyBody(req, body);
  } catch (e) {
    if (!(e instanceof S3Fail))
      throw e;
    state.stats.digest_failures++;
    log(req, `${e.status} ${e.code}`);
    return sendError(req, res, e);
  }
  const fault = takeFault(req.method);
  if (fault) {
    log(req, `fault ${fault.type}`);
    switch (fault.type) {
      case 'status':
        return sendError(req, res, new S3Fail(fault.status || 503, fault.code || 'SlowDown',
          fault.message || 'Please reduce your request rate.'));
      case 'reset':
        return req.socket.resetAndDestroy();
      case 'stall':
        return;   // the client's low-speed timeout must end this
      case 'delay':
        setTimeout(() => {
          if (!req.socket.destroyed)
            forward(req, res, body, null, s3port);
        }, fault.ms || 5000);
        return;
      case 'truncate':
      case 'corrupt':
        return forward(req, res, body, fault, s3port);
      default:
        break;
    }
  }
  forward(req, res, body, null, s3port);
}

async function main() {
  const s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: opts.dir,
    silent: true,
    vhostBuckets: false,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const s3addr = await s3.run();
  const server = http.createServer((req, res) => {
    handle(req, res, s3addr.port).catch((e) => {
      process.stderr.write(`internal error: ${e.stack}\n`);
      if (!res.headersSent)
        sendError(req, res, new S3Fail(500, 'InternalError', 'We encountered an internal error.'));
      else
        res.destroy();
    });
  });
  server.keepAliveTimeout = 30000;
  server.listen(opts.port, '127.0.0.1', () => {
    process.stdout.write(`READY ${server.address().port}\n`);
  });
  const stop = () => {
    server.close();
    s3.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
