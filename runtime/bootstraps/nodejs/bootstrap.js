'use strict';
// fgs bootstrap for FunctionGraph Node.js runtimes.
//
// Implements the FunctionGraph Node.js programming model (async and callback handlers,
// an optional initializer, the documented context methods) on top of the custom-runtime
// API served by fgs at $RUNTIME_API_ADDR.
//
// In a prewarmed sandbox ($FGS_PREWARMED) node starts before any function has taken it: it
// loads this bootstrap and common core modules, then waits for its assignment
// (GET /v1/runtime/assignment), which comes once fgs has mounted the function's code. The
// answer is the function's environment; the bootstrap adopts it and goes on as any instance.

const http = require('http');
const path = require('path');

const [API_HOST, API_PORT] = process.env.RUNTIME_API_ADDR.split(':');
let CODE_ROOT, HANDLER, INITIALIZER, TIMEOUT_S, USER_DATA;

// The function's settings, from its environment.
function settings() {
  CODE_ROOT = process.env.RUNTIME_CODE_ROOT || process.cwd();
  HANDLER = process.env.RUNTIME_HANDLER || 'index.handler';
  INITIALIZER = process.env.RUNTIME_INITIALIZER_HANDLER || '';
  TIMEOUT_S = parseInt(process.env.RUNTIME_TIMEOUT || '3', 10);
  USER_DATA = JSON.parse(process.env.RUNTIME_USERDATA || '{}');
}
settings();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

// Asks fgs to answer a response or error with the next event (saves a round trip).
const NEXT = { 'X-Fgs-Next': '1' };

function call(method, urlPath, body, extra) {
  const headers = Object.assign({}, extra || {});
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: API_HOST, port: API_PORT, method, path: urlPath, agent, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function makeLogger(context) {
  const log = (level) => (...args) => {
    const msg = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    process.stdout.write(`${new Date().toISOString()} ${context.getRequestID()} ${level} ${msg}\n`);
  };
  return { info: log('INFO'), warn: log('WARN'), error: log('ERROR'), debug: log('DEBUG') };
}

function makeContext(requestId, headers) {
  const start = Date.now();
  headers = headers || {};
  const context = {
    getRequestID: () => requestId || '',
    getRemainingTimeInMilliSeconds: () => Math.max(0, TIMEOUT_S * 1000 - (Date.now() - start)),
    getRunningTimeInSeconds: () => TIMEOUT_S,
    getUserData: (key, dflt) => (key in USER_DATA ? USER_DATA[key] : dflt),
    getFunctionName: () => process.env.RUNTIME_FUNC_NAME || '',
    getVersion: () => process.env.RUNTIME_FUNC_VERSION || 'latest',
    getMemorySize: () => parseInt(process.env.RUNTIME_MEMORY || '128', 10),
    getCPUNumber: () => parseInt(process.env.RUNTIME_CPU || '300', 10),
    getProjectID: () => process.env.RUNTIME_PROJECT_ID || '',
    getPackage: () => process.env.RUNTIME_PACKAGE || 'default',
    getAlias: () => process.env.RUNTIME_ALIAS || '',
    getAccessKey: () => headers['x-cff-access-key'] || '',
    getSecretKey: () => headers['x-cff-secret-key'] || '',
    getSecurityAccessKey: () => headers['x-cff-security-access-key'] || '',
    getSecuritySecretKey: () => headers['x-cff-security-secret-key'] || '',
    getSecurityToken: () => headers['x-cff-security-token'] || '',
    getToken: () => headers['x-cff-auth-token'] || '',
  };
  const logger = makeLogger(context);
  context.getLogger = () => logger;
  return context;
}

function load(entry) {
  const dot = entry.lastIndexOf('.');
  const file = entry.slice(0, dot);
  const name = entry.slice(dot + 1);
  const mod = require(path.join(CODE_ROOT, file));
  const fn = mod[name];
  if (typeof fn !== 'function') {
    throw new Error(`function '${name}' not found in module '${file}'`);
  }
  return fn;
}

function errorPayload(err, message) {
  const e = err instanceof Error ? err : new Error(typeof err === 'string' ? err : JSON.stringify(err));
  return JSON.stringify({
    errorMessage: message || `function invocation exception, error: ${e.message}`,
    errorType: e.name || 'Error',
    stackTrace: (e.stack || '').split('\n').slice(1).map((l) => l.trim()),
  });
}

// Runs fn(...args) as an async function or with a trailing callback(err, data).
function run(fn, args) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, data) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(data);
    };
    try {
      const ret = fn(...args, callback);
      if (fn.length <= args.length) {
        Promise.resolve(ret).then((v) => callback(null, v), (e) => callback(e === undefined ? new Error('rejected') : e));
      }
    } catch (e) {
      callback(e);
    }
  });
}

function encodeResult(value) {
  if (value === undefined || value === null) return '';
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function decodeEvent(body) {
  if (!body.length) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (_) {
    return body.toString('utf8');
  }
}

// Core modules handlers commonly require, loaded while the sandbox waits.
function preload() {
  for (const m of ['https', 'crypto', 'url', 'querystring', 'util', 'events', 'stream', 'fs', 'os', 'zlib']) {
    require(m);
  }
}

// Waits until a function takes this prewarmed sandbox, then becomes its instance: its
// environment, its dependency packages on the module path (as NODE_PATH would at start),
// its code root as the working directory (now that the code is mounted there).
async function awaitAssignment() {
  let answer;
  for (;;) {
    try {
      answer = await call('GET', '/v1/runtime/assignment');
      if (answer.status === 200) break;
    } catch (_) {
      // retried below
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const name of Object.keys(process.env)) delete process.env[name];
  for (const [name, value] of JSON.parse(answer.body.toString('utf8'))) process.env[name] = value;
  if (process.env.NODE_PATH) require('module').Module._initPaths();
  settings();
  process.chdir(CODE_ROOT);
}

async function main() {
  if (process.env.FGS_PREWARMED) {
    preload();
    await awaitAssignment();
  }
  // A handler may leave nothing pending (a promise that never settles); the runtime must
  // still wait for the timeout rather than exit with an empty event loop.
  setInterval(() => {}, 1 << 30);
  let handler = null;
  let loadError = null;
  try {
    handler = load(HANDLER);
  } catch (e) {
    loadError = e;
  }
  if (INITIALIZER && !loadError) {
    await call('POST', '/v1/runtime/init/start', '');
    try {
      await run(load(INITIALIZER), [makeContext('')]);
    } catch (e) {
      console.error(e && e.stack ? e.stack : e);
      await call('POST', '/v1/runtime/init/error',
        errorPayload(e, `function initialization failed, error: ${e && e.message ? e.message : e}`));
      process.exit(1);
    }
  }
  let next = null;
  for (;;) {
    if (!next || next.status !== 200) {
      try {
        next = await call('GET', '/v1/runtime/invocation/request');
      } catch (_) {
        next = null;
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (next.status !== 200) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
    }
    const requestId = next.headers['x-cff-request-id'] || '';
    // Each answer's reply is the next event.
    if (loadError) {
      next = await answer(`/v1/runtime/invocation/error/${requestId}`, errorPayload(loadError, String(loadError.message)));
      continue;
    }
    try {
      const result = await run(handler, [decodeEvent(next.body), makeContext(requestId, next.headers)]);
      next = await answer(`/v1/runtime/invocation/response/${requestId}`, encodeResult(result));
    } catch (e) {
      console.error(e && e.stack ? e.stack : e);
      next = await answer(`/v1/runtime/invocation/error/${requestId}`, errorPayload(e));
    }
  }
}

// Posts an answer; its reply is the next event (or null when the connection broke).
async function answer(urlPath, body) {
  try {
    return await call('POST', urlPath, body, NEXT);
  } catch (_) {
    return null;
  }
}

main();
