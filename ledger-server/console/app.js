// Agent Ledger console: one script, no dependencies, served under a strict
// CSP (script-src 'self', no inline code or style). Every value that came
// from the server (agent ids, notes, entries) reaches the page through
// textContent or attributes, never as markup. The admin token lives in the
// `token` variable only: never in storage, cookies or the DOM. A module:
// nothing here is a global other scripts could read.

const PIN_STORAGE = 'agent-ledger.pinned-log-key';
const EVENT_TYPES = ['revocation', 'reinstatement', 'risk-level-change', 'signal'];
const EVENTS_KEPT = 500;
const EVENTS_REPLAYED = 200;
const POLL_MS = 2000;
// Least time between two reloads of a view that live events ask for.
const REFRESH_GAP_MS = 500;
const SERIES_KEPT = 300;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** The admin token: memory only. */
let token = null;
/** Everything that lives for one signed-in session. */
let session = null;

// --- errors and the API -------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

class NetworkError extends Error {}

/** What went wrong, in words a person can act on. */
function describe(err) {
  if (err instanceof ApiError) return `${err.message} (${err.code}, HTTP ${err.status})`;
  if (err instanceof NetworkError) return err.message;
  return `Something went wrong in the page: ${err && err.message ? err.message : String(err)}`;
}

function isAbort(err) {
  return err && err.name === 'AbortError';
}

/** A JSON call with the admin token; a 401 ends the session. */
async function api(path, { method = 'GET', body, signal, bearer = token } = {}) {
  const headers = { Authorization: `Bearer ${bearer}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  let text;
  try {
    resp = await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    text = await resp.text();
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new NetworkError(`The ledger server did not answer: ${e.message}`);
  }
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const detail = json && json.error ? json.error : {};
    const err = new ApiError(resp.status, detail.code || `http_${resp.status}`,
      detail.message || text.slice(0, 200) || resp.statusText);
    if (resp.status === 401 && bearer === token && session) {
      endSession('The server refused the token (unauthorized): sign in again.');
    }
    throw err;
  }
  if (json === null) throw new ApiError(resp.status, 'not_json', 'The server answered with something that is not JSON.');
  return json;
}

const agentPath = (id) => encodeURIComponent(id);

// --- DOM building (never markup from data) -------------------------------------

function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) {
      if (typeof v !== 'function') throw new TypeError(`${k} takes a function`);
      el.addEventListener(k.slice(2), v);
    } else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces `el`'s children (nested arrays flattened, nulls left out). */
function fill(el, ...children) {
  el.replaceChildren();
  return build(el, null, children);
}

const $ = (sel, root = document) => root.querySelector(sel);

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortTime = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A time in the viewer's zone, the ISO-8601 UTC instant in `datetime` and `title`. */
function timeEl(ms, format = timeFormat) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, 'never');
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return h('span', { class: 'muted' }, 'unknown time');
  const iso = d.toISOString();
  return h('time', { datetime: iso, title: iso }, format.format(d));
}

function entryLink(index, label) {
  return h('a', { href: `#entry/${index}`, class: 'entry-link' }, label || `#${index}`);
}

function agentLink(id) {
  return h('a', { href: `#agent/${agentPath(id)}`, class: 'agent-link' }, id);
}

function statusBadge(status) {
  return h('span', { class: `badge status-${safeClass(status)}`, dataset: { status: String(status) } }, String(status));
}

function levelBadge(level) {
  return h('span', { class: `badge level-${safeClass(level)}` }, `${level} risk`);
}

function safeClass(v) {
  return String(v).replace(/[^a-z0-9-]/gi, '_');
}

function emptyState(text) {
  return h('p', { class: 'empty' }, text);
}

function errorBox(err, prefix) {
  return h('p', { class: 'error', role: 'alert' }, prefix ? `${prefix}: ${describe(err)}` : describe(err));
}

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function mono(text) {
  return h('code', { class: 'mono' }, text === undefined || text === null ? '—' : String(text));
}

function setStatusMessage(text, isError) {
  const el = $('#status-msg');
  if (!el) return;
  el.textContent = text || '';
  el.classList.toggle('error', Boolean(isError && text));
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** Runs `fn` every `ms` until `signal` aborts; never two at once. */
function every(ms, signal, fn) {
  let busy = false;
  const t = setInterval(async () => {
    if (busy || signal.aborted) return;
    busy = true;
    try { await fn(); } finally { busy = false; }
  }, ms);
  signal.addEventListener('abort', () => clearInterval(t), { once: true });
}

/**
 * `fn` run on demand (polls, live events), one run at a time and at most
 * once per `gapMs`: demands meanwhile fold into one later run, so a burst
 * of events costs one reload and replies never arrive out of order.
 */
function throttled(fn, gapMs, signal) {
  let running = false;
  let again = false;
  let last = 0;
  let timer = null;
  const run = async () => {
    timer = null;
    if (signal.aborted) return;
    if (running) { again = true; return; }
    const wait = last + gapMs - Date.now();
    if (wait > 0) { timer = setTimeout(run, wait); return; }
    running = true;
    last = Date.now();
    try { await fn(); } finally {
      running = false;
      if (again) { again = false; poke(); }
    }
  };
  const poke = () => { if (!timer) run(); };
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  return poke;
}

/**
 * Runs `redraw`, which rebuilds what is inside `container`, then gives the
 * focus back to the same control (by id, sort key or link target) if it
 * was in there: a refresh never throws a keyboard user out.
 */
function keepingFocus(container, redraw) {
  const el = document.activeElement;
  let selector = null;
  if (el && el !== container && container.contains(el)) {
    if (el.id) selector = `#${CSS.escape(el.id)}`;
    else if (el.dataset && el.dataset.sort) selector = `[data-sort="${CSS.escape(el.dataset.sort)}"]`;
    else if (el.getAttribute('href')) selector = `[href="${CSS.escape(el.getAttribute('href'))}"]`;
  }
  redraw();
  const again = selector && container.querySelector(selector);
  if (again) again.focus();
}

// --- bytes, hashes, signatures (WebCrypto) ---------------------------------------

const utf8 = new TextEncoder();

function b64decode(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error('not base64');
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) { out.set(a, at); at += a.length; }
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

async function ed25519Verify(pub, sig, message) {
  const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig, message);
}

/** A C2SP note verifier key `name+hex8+base64(alg || pub32)`. */
function parseVerifierKey(text, alg) {
  // The name holds no "+"; the base64 may.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(String(text).trim());
  if (!m) throw new Error('a key is <name>+<8 lower-case hex digits>+<base64>');
  const [, name, id, b64] = m;
  let raw;
  try { raw = b64decode(b64); } catch { throw new Error('the key is not base64'); }
  if (raw.length !== 33) throw new Error(`the key is ${raw.length} bytes, not 33`);
  if (raw[0] !== alg) throw new Error(`the key's algorithm byte is 0x${raw[0].toString(16).padStart(2, '0')}, not 0x0${alg}`);
  return { name, id, pub: raw.slice(1), alg };
}

async function keyIdOf(key) {
  return (await sha256(utf8.encode(key.name), [0x0a, key.alg], key.pub)).slice(0, 4);
}

/** A signed note: body (through its last "\n"), parsed checkpoint lines, signature lines. */
function parseCheckpoint(text) {
  // The text ends at the last blank line (as `verifier`'s note.rs).
  const blank = text.lastIndexOf('\n\n');
  if (blank < 0) throw new Error('the note has no blank line before its signatures');
  const body = text.slice(0, blank + 1);
  const lines = body.split('\n').slice(0, -1);
  if (lines.length < 3) throw new Error('a checkpoint body has at least three lines');
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error('the tree size line is not a decimal number');
  let root;
  try { root = b64decode(lines[2]); } catch { throw new Error('the root hash is not base64'); }
  if (root.length !== 32) throw new Error('the root hash is not 32 bytes');
  const sigs = [];
  for (const line of text.slice(blank + 2).split('\n')) {
    if (line === '') continue;
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error(`a signature line is malformed: ${line.slice(0, 80)}`);
    let raw;
    try { raw = b64decode(m[2]); } catch { throw new Error(`the signature of ${m[1]} is not base64`); }
    sigs.push({ name: m[1], raw });
  }
  return { body, bodyBytes: utf8.encode(body), origin: lines[0], size: BigInt(lines[1]), root, sigs };
}

const LSB = (n) => (n & 1n) === 1n;

/** RFC 9162 §2.1.3.2: verifying an inclusion proof. */
async function verifyInclusion(index, size, leafHash, path, root) {
  if (index < 0n || index >= size) throw new Error(`index ${index} is not in a tree of size ${size}`);
  let fn = index;
  let sn = size - 1n;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0n) throw new Error('the proof is longer than the tree allows');
    if (LSB(fn) || fn === sn) {
      r = await sha256([0x01], p, r);
      if (!LSB(fn)) {
        while (!LSB(fn) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await sha256([0x01], r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('the proof is shorter than the tree needs');
  if (!sameBytes(r, root)) throw new Error('the computed root differs from the checkpoint\'s root');
  return r;
}

function pinnedKey() {
  try { return localStorage.getItem(PIN_STORAGE) || ''; } catch { return ''; }
}

function setPinnedKey(text) {
  try {
    if (text) localStorage.setItem(PIN_STORAGE, text);
    else localStorage.removeItem(PIN_STORAGE);
  } catch { /* storage disabled: the pin lasts for this page only */ }
}

/**
 * Verifies entry `index` in this browser: the pin, the key id, the
 * checkpoint signature, the witness cosignatures, the leaf's inclusion.
 * Renders each step into `list` as it is decided.
 */
async function verifyEntry(index, list, summary, signal, prefetched) {
  list.replaceChildren();
  summary.textContent = 'Verifying…';
  summary.className = 'summary';
  delete summary.dataset.failed;
  const results = [];
  const step = (id, ok, label, detail) => {
    const mark = { true: '✓ verified', false: '✗ failed', warn: '⚠ warning', skip: '– not checked' }[String(ok)];
    results.push(ok);
    list.append(h('li', { class: `step ok-${ok}`, dataset: { step: id, ok: String(ok) } },
      h('strong', null, `${label}: `), `${mark}${detail ? `: ${detail}` : ''}`));
  };
  if (!globalThis.crypto || !crypto.subtle) {
    step('webcrypto', false, 'WebCrypto', 'not available here (the page must be served over HTTPS or from localhost)');
    summary.textContent = 'Cannot verify in this browser.';
    return;
  }
  let health;
  let got;
  try {
    // The entry view verifies exactly the entry it shows (`prefetched`).
    [health, got] = await Promise.all([api('/v1/console/health', { signal }), prefetched || api(`/v1/console/entries/${index}`, { signal })]);
  } catch (e) {
    if (isAbort(e)) return;
    step('fetch', false, 'Fetching the entry and its proof', describe(e));
    summary.textContent = 'Verification could not start.';
    return;
  }

  // 1. The served key against the pin.
  let served = null;
  try { served = parseVerifierKey(health.log_key, 0x01); } catch (e) { step('served-key', false, 'Served log key', e.message); }
  const pinText = pinnedKey().trim();
  let trusted = served;
  if (!pinText) {
    step('pin', 'warn', 'Pinned log key', 'not pinned: you are trusting the key this server sent');
  } else {
    let pin = null;
    try { pin = parseVerifierKey(pinText, 0x01); } catch (e) { step('pin', false, 'Pinned log key', `the pinned key is not a log key (${e.message})`); }
    if (pin) {
      trusted = pin;
      if (served && pinText === String(health.log_key).trim()) step('pin', true, 'Pinned log key', 'the served key is the pinned key');
      else step('pin', false, 'Pinned log key', 'the key this server sent is not the pinned key');
    }
  }
  if (!trusted) { finish(); return; }

  // 2. The key id.
  const idBytes = await keyIdOf(trusted);
  const idOk = toHex(idBytes) === trusted.id;
  step('key-id', idOk, 'Key id', idOk ? `${trusted.id} = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]` : `the key says ${trusted.id}, its hash gives ${toHex(idBytes)}`);

  // 3. The checkpoint signature.
  let cp;
  try { cp = parseCheckpoint(got.checkpoint); } catch (e) { step('checkpoint', false, 'Checkpoint signature', e.message); finish(); return; }
  // Every line that names the trusted key must verify (as note.rs).
  const lines = cp.sigs.filter((sg) => sg.name === trusted.name && sg.raw.length >= 4 && sameBytes(sg.raw.slice(0, 4), idBytes));
  if (lines.length === 0) {
    step('checkpoint', false, 'Checkpoint signature', `no signature line by ${trusted.name} with key id ${toHex(idBytes)}`);
  } else {
    let ok = true;
    let why = '';
    for (const line of lines) {
      let good = false;
      try { good = line.raw.length === 68 && await ed25519Verify(trusted.pub, line.raw.slice(4), cp.bodyBytes); } catch (e) { why = `WebCrypto refused it: ${e.message}`; }
      if (!good) { ok = false; why = why || 'the Ed25519 signature does not verify'; }
    }
    step('checkpoint', ok, 'Checkpoint signature', ok ? `${cp.origin}, size ${cp.size}, by ${trusted.name}` : why);
  }

  // 4. Witness cosignatures (c2sp.org/tlog-cosignature).
  const witnesses = (health.witnesses && health.witnesses.witnesses) || [];
  const quorum = Number((health.witnesses && health.witnesses.quorum) || 0);
  let cosigned = 0;
  if (witnesses.length === 0) step('witnesses', 'skip', 'Witness cosignatures', 'no witness is configured for this log');
  for (const w of witnesses) {
    const id = `witness:${w.name}`;
    const label = `Witness ${w.name}`;
    let wk;
    try { wk = parseVerifierKey(w.key, 0x04); } catch (e) { step(id, false, label, `its key: ${e.message}`); continue; }
    const wid = await keyIdOf(wk);
    if (toHex(wid) !== wk.id) { step(id, false, label, 'its key id does not match its key'); continue; }
    const cos = cp.sigs.find((sg) => sg.name === wk.name && sg.raw.length === 76 && sameBytes(sg.raw.slice(0, 4), wid));
    if (!cos) { step(id, 'warn', label, 'no cosignature of this witness on this checkpoint (yet)'); continue; }
    const ts = new DataView(cos.raw.buffer, cos.raw.byteOffset + 4, 8).getBigUint64(0, false);
    const message = concat(utf8.encode(`cosignature/v1\ntime ${ts}\n`), cp.bodyBytes);
    let ok = false;
    try { ok = await ed25519Verify(wk.pub, cos.raw.slice(12), message); } catch { ok = false; }
    if (ok) cosigned += 1;
    step(id, ok, label, ok ? `cosigned at ${new Date(Number(ts) * 1000).toISOString()}` : 'the cosignature does not verify');
  }
  if (witnesses.length > 0) {
    step('quorum', cosigned >= quorum ? true : 'warn', 'Witness quorum',
      `${cosigned} of the ${quorum} cosignatures the log requires verified on this checkpoint${cosigned >= quorum ? '' : ': not witnessed yet'}`);
  }

  // 5. The leaf hash and its inclusion proof to the checkpoint's root.
  try {
    const leaf = b64decode(got.leaf);
    const leafHash = await sha256([0x00], leaf);
    if (BigInt(got.tree_size) !== cp.size) throw new Error(`the proof is for size ${got.tree_size}, the checkpoint for size ${cp.size}`);
    if (BigInt(got.index) !== BigInt(index)) throw new Error(`asked for entry ${index}, the server answered with entry ${got.index}`);
    const path = got.inclusion.map((p) => {
      const b = b64decode(p);
      if (b.length !== 32) throw new Error('a proof hash is not 32 bytes');
      return b;
    });
    await verifyInclusion(BigInt(got.index), cp.size, leafHash, path, cp.root);
    step('inclusion', true, 'Inclusion proof', `leaf ${toHex(leafHash).slice(0, 16)}… is entry ${got.index} of ${cp.size} (${path.length} hashes, RFC 9162)`);
  } catch (e) {
    step('inclusion', false, 'Inclusion proof', e.message);
  }
  finish();

  function finish() {
    const failed = results.filter((r) => r === false).length;
    const warned = results.filter((r) => r === 'warn').length;
    summary.textContent = failed ? `${failed} check${failed > 1 ? 's' : ''} failed: do not trust this entry.`
      : warned ? 'Verified, with a warning: pin the log key to stop trusting this server\'s word for it.'
        : `Entry ${index} verified in this browser.`;
    summary.className = `summary ${failed ? 'bad' : warned ? 'warn' : 'good'}`;
    summary.dataset.failed = String(failed);
  }
}

/** The "Verify in the browser" block: index input, pin, button, steps. */
function verifyPanel(signal, { index, fixed }) {
  let prefetched = null;
  const indexInput = h('input', { id: 'verify-index', type: 'number', min: '0', step: '1', inputmode: 'numeric' });
  if (index !== undefined && index !== null) indexInput.value = String(index);
  const pinInput = h('input', { id: 'pinned-key', type: 'text', spellcheck: 'false', autocomplete: 'off', placeholder: 'name+1a2b3c4d+AQ…' });
  pinInput.value = pinnedKey();
  const pinState = h('p', { id: 'pin-state', class: 'hint', 'aria-live': 'polite' });
  const showPin = () => {
    pinState.textContent = pinnedKey() ? 'A log key is pinned in this browser.' : 'No key pinned: verification trusts the key this server sends.';
  };
  showPin();
  pinInput.addEventListener('change', () => { setPinnedKey(pinInput.value.trim()); showPin(); });
  const list = h('ol', { id: 'verify-result', class: 'steps', 'aria-live': 'polite' });
  const summary = h('p', { id: 'verify-summary', class: 'summary', 'aria-live': 'polite' });
  let running = null;
  const run = async () => {
    setPinnedKey(pinInput.value.trim());
    showPin();
    const n = Number(indexInput.value);
    if (indexInput.value === '' || !Number.isInteger(n) || n < 0) {
      list.replaceChildren();
      summary.textContent = 'Give an entry index: a whole number from 0.';
      summary.className = 'summary bad';
      return;
    }
    if (running) running.abort();
    running = new AbortController();
    signal.addEventListener('abort', () => running && running.abort(), { once: true });
    verifyButton.disabled = true;
    try { await verifyEntry(n, list, summary, running.signal, fixed ? prefetched : null); } finally { verifyButton.disabled = false; }
  };
  const verifyButton = h('button', { id: 'verify', type: 'button', onclick: run }, 'Verify');
  const pinServed = h('button', {
    id: 'pin-served', type: 'button',
    onclick: async () => {
      try {
        const health = await api('/v1/console/health', { signal });
        pinInput.value = String(health.log_key).trim();
        setPinnedKey(pinInput.value);
        showPin();
      } catch (e) {
        if (!isAbort(e)) pinState.textContent = describe(e);
      }
    },
  }, 'Pin the served key');
  const forget = h('button', { id: 'pin-clear', type: 'button', class: 'secondary', onclick: () => { pinInput.value = ''; setPinnedKey(''); showPin(); } }, 'Forget the pin');
  return {
    indexInput,
    // The entry the page shows, which "Verify" then checks (entry view).
    setEntry: (got) => { prefetched = got; },
    node: h('section', { class: 'card verify', 'aria-labelledby': 'verify-title' },
      h('h3', { id: 'verify-title' }, 'Verify in the browser'),
      h('p', { class: 'hint' }, 'Checks the entry\'s inclusion proof, the checkpoint\'s signature and the witnesses\' cosignatures here, with WebCrypto, against the log key you pin: the server\'s answers are not taken on its word. (This page is itself served by the server: to audit a server you do not trust, use ledger-verify.)'),
      h('div', { class: 'form-row' },
        fixed ? null : [h('label', { for: 'verify-index' }, 'Entry index'), indexInput]),
      h('div', { class: 'form-row' },
        h('label', { for: 'pinned-key' }, 'Pinned log key'), pinInput),
      h('div', { class: 'buttons' }, verifyButton, pinServed, forget),
      pinState, summary, list),
  };
}

// --- the live event stream (fetch + SSE parser, reconnect with Last-Event-ID) ----

class EventFeed {
  constructor(signal) {
    this.signal = signal;
    this.events = [];
    this.seen = new Set();
    this.lastId = null;
    this.listeners = new Set();
    this.state = { text: 'not connected', kind: 'down' };
  }

  on(fn, signal) {
    this.listeners.add(fn);
    signal.addEventListener('abort', () => this.listeners.delete(fn), { once: true });
  }

  emit(msg) {
    for (const fn of this.listeners) {
      try { fn(msg); } catch (e) { console.error(e); }
    }
  }

  setState(kind, text) {
    this.state = { kind, text };
    const el = $('#live-status');
    if (el) {
      el.textContent = `Live events: ${text}`;
      el.dataset.state = kind;
    }
    this.emit({ state: this.state });
  }

  async run(startAfter) {
    let delay = 500;
    while (!this.signal.aborted) {
      this.setState('connecting', 'connecting…');
      try {
        const url = new URL('/v1/console/events', location.origin);
        url.searchParams.set('types', EVENT_TYPES.join(','));
        const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
        // Resume after the last id seen; "-1" (before the first entry) is
        // not an id the header takes, only `after=`.
        if (this.lastId !== null && this.lastId !== '-1') headers['Last-Event-ID'] = this.lastId;
        else if (this.lastId === '-1') url.searchParams.set('after', '-1');
        else if (startAfter !== null) url.searchParams.set('after', String(startAfter));
        let resp;
        try {
          resp = await fetch(url, { headers, signal: this.signal, cache: 'no-store', credentials: 'omit' });
        } catch (e) {
          if (isAbort(e)) return;
          throw new NetworkError(`The ledger server did not answer: ${e.message}`);
        }
        if (resp.status === 401) { endSession('The server refused the token (unauthorized): sign in again.'); return; }
        if (resp.status === 403) { endSession('This server has no admin token: its admin routes, and so this console, are disabled (admin_disabled).'); return; }
        if (!resp.ok || !resp.body) {
          let detail = {};
          try { detail = (await resp.json()).error || {}; } catch { /* not JSON */ }
          throw new ApiError(resp.status, detail.code || `http_${resp.status}`, detail.message || resp.statusText);
        }
        const after = resp.headers.get('ledger-events-after');
        if (this.lastId === null && after !== null && /^-?[0-9]+$/.test(after)) this.lastId = after;
        this.setState('up', 'connected');
        delay = 500;
        await this.read(resp.body);
        if (this.signal.aborted) return;
        throw new NetworkError('the server closed the stream');
      } catch (e) {
        if (isAbort(e) || this.signal.aborted) return;
        const secs = Math.round(delay / 100) / 10;
        this.setState('down', `disconnected (${describe(e)}); reconnecting in ${secs} s`);
        await sleep(delay, this.signal);
        delay = Math.min(delay * 2, 15000);
      }
    }
  }

  /** A text/event-stream parser (HTML Living Standard, "Interpreting an event stream"). */
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    this.signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
    let buf = '';
    let data = [];
    let type = '';
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (this.signal.aborted) return;
        throw new NetworkError(`the stream broke: ${e.message}`);
      }
      if (chunk.done) return;
      buf += chunk.value;
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        if (!m) break;
        // A lone "\r" at the end may be the first half of "\r\n".
        if (m[0] === '\r' && m.index === buf.length - 1) break;
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === '') {
          if (data.length) this.dispatch(type || 'message', data.join('\n'));
          data = [];
          type = '';
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'event') type = value;
        else if (field === 'id' && !value.includes('\0')) this.lastId = value;
      }
    }
  }

  dispatch(type, data) {
    let ev;
    try { ev = JSON.parse(data); } catch { return; }
    if (!ev || typeof ev.index !== 'number' || this.seen.has(ev.index)) return;
    this.seen.add(ev.index);
    // Newest first; a replayed older event goes where its index says.
    let at = this.events.findIndex((e) => e.index < ev.index);
    if (at < 0) at = this.events.length;
    this.events.splice(at, 0, ev);
    if (this.events.length > EVENTS_KEPT) {
      for (const old of this.events.splice(EVENTS_KEPT)) this.seen.delete(old.index);
    }
    this.emit({ event: ev });
  }
}

// --- health polling (the series live in memory) -----------------------------------

class HealthPoll {
  constructor(signal) {
    this.signal = signal;
    this.latest = null;
    this.series = [];
    this.listeners = new Set();
  }

  on(fn, signal) {
    this.listeners.add(fn);
    signal.addEventListener('abort', () => this.listeners.delete(fn), { once: true });
  }

  record(health) {
    this.latest = health;
    const last = this.series[this.series.length - 1];
    let rate = 0;
    if (last && health.time > last.time) {
      rate = Math.max(0, (health.appended_entries - last.appended) * 1000 / (health.time - last.time));
    }
    this.series.push({ time: health.time, size: health.tree_size, appended: health.appended_entries, rate });
    if (this.series.length > SERIES_KEPT) this.series.shift();
    for (const fn of this.listeners) fn(health);
  }

  start() {
    every(POLL_MS, this.signal, async () => {
      try {
        this.record(await api('/v1/console/health', { signal: this.signal }));
        if (this.failing) { this.failing = false; setStatusMessage(''); }
      } catch (e) {
        if (isAbort(e) || !session) return;
        this.failing = true;
        setStatusMessage(`Log health could not be read: ${describe(e)}`, true);
      }
    });
  }
}

// --- views ------------------------------------------------------------------------

/** Each view: `mount(root, arg, signal)`; the signal aborts when it is left. */
const VIEWS = {
  agents: { nav: 'agents', title: 'Agents', mount: mountAgents },
  agent: { nav: 'agents', title: 'Agent', mount: mountAgent },
  events: { nav: 'events', title: 'Live events', mount: mountEvents },
  escalations: { nav: 'escalations', title: 'Escalations', mount: mountEscalations },
  health: { nav: 'health', title: 'Log health', mount: mountHealth },
  entry: { nav: null, title: 'Entry', mount: mountEntry },
};

function viewHeader(title, ...extra) {
  return h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: '-1' }, title), extra);
}

function ready(root) {
  root.dataset.state = 'ready';
  if (document.body.dataset.ready !== '1') performance.mark('agent-ledger:first-view');
  document.body.dataset.ready = '1';
}

// Agents ----------------------------------------------------------------------------

const LEVEL_ORDER = { high: 0, medium: 1, low: 2 };
const STATUS_ORDER = { revoked: 0, quarantined: 1, active: 2, retired: 3 };
const AGENT_COLUMNS = [
  { key: 'agent', label: 'Agent', value: (a) => a.agent },
  { key: 'score', label: 'Score', value: (a) => a.score },
  { key: 'level', label: 'Level', value: (a) => LEVEL_ORDER[a.level] ?? 9 },
  { key: 'status', label: 'Status', value: (a) => STATUS_ORDER[a.status] ?? 9 },
  { key: 'attested', label: 'Last attestation', value: (a) => (a.last_attestation ? a.last_attestation.time : -1) },
  { key: 'evidence', label: 'Evidence', value: (a) => (a.last_attestation ? a.last_attestation.evidence : '') },
];
const agentsSort = { key: 'score', dir: 1 };
const agentsFilter = { text: '', status: '' };

function mountAgents(root, _arg, signal) {
  const filterInput = h('input', { id: 'agent-filter', type: 'search', placeholder: 'id, owner or purpose', autocomplete: 'off' });
  filterInput.value = agentsFilter.text;
  const statusSelect = h('select', { id: 'status-filter' },
    h('option', { value: '' }, 'every status'),
    ['active', 'quarantined', 'revoked', 'retired'].map((st) => h('option', { value: st }, st)));
  statusSelect.value = agentsFilter.status;
  const count = h('p', { id: 'agents-count', class: 'hint', 'aria-live': 'polite' });
  const headRow = h('tr');
  const tbody = h('tbody');
  const table = h('table', { id: 'agents-table', class: 'data' },
    h('caption', { class: 'visually-hidden' }, 'Agents: sortable by each column'), h('thead', null, headRow), tbody);
  const body = h('div', { id: 'agents-body' });
  const asOf = h('p', { class: 'hint' });
  root.append(
    viewHeader('Agents'),
    h('div', { class: 'toolbar' },
      h('label', { for: 'agent-filter' }, 'Filter'), filterInput,
      h('label', { for: 'status-filter' }, 'Status'), statusSelect),
    count, body, asOf);
  let data = null;

  const drawHead = () => {
    headRow.replaceChildren(...AGENT_COLUMNS.map((c) => {
      const sorted = agentsSort.key === c.key;
      const th = h('th', { scope: 'col', 'aria-sort': sorted ? (agentsSort.dir > 0 ? 'ascending' : 'descending') : 'none' },
        h('button', {
          type: 'button', class: 'sort', dataset: { sort: c.key },
          onclick: () => {
            agentsSort.dir = agentsSort.key === c.key ? -agentsSort.dir : 1;
            agentsSort.key = c.key;
            keepingFocus(headRow, drawHead);
            draw();
          },
        }, c.label, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, sorted ? (agentsSort.dir > 0 ? ' ▲' : ' ▼') : '')));
      return th;
    }));
  };

  const draw = () => {
    if (!data) return;
    const text = agentsFilter.text.trim().toLowerCase();
    const col = AGENT_COLUMNS.find((c) => c.key === agentsSort.key) || AGENT_COLUMNS[1];
    const rows = data.agents
      .filter((a) => !agentsFilter.status || a.status === agentsFilter.status)
      .filter((a) => !text || [a.agent, a.owner, a.purpose].some((v) => String(v || '').toLowerCase().includes(text)))
      .sort((x, y) => {
        const a = col.value(x);
        const b = col.value(y);
        const c = typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
        return (c || x.agent.localeCompare(y.agent)) * agentsSort.dir;
      });
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('tr[data-agent]');
    const focusedId = focused ? focused.dataset.agent : null;
    tbody.replaceChildren(...rows.map((a) => {
      const link = agentLink(a.agent);
      const tr = h('tr', { dataset: { agent: a.agent, status: a.status }, class: 'clickable' },
        h('th', { scope: 'row', class: 'agent-id' }, link),
        h('td', { class: 'num', dataset: { col: 'score' } }, String(a.score)),
        h('td', { dataset: { col: 'level' } }, levelBadge(a.level)),
        h('td', { dataset: { col: 'status' } }, statusBadge(a.status)),
        h('td', { dataset: { col: 'attested' } }, a.last_attestation ? [timeEl(a.last_attestation.time), ' ', entryLink(a.last_attestation.index)] : h('span', { class: 'muted' }, 'never')),
        h('td', { dataset: { col: 'evidence' } }, a.last_attestation ? a.last_attestation.evidence : '—'));
      // The whole row opens the agent; the link in it is what the keyboard reaches.
      tr.addEventListener('click', (e) => {
        if (e.target.closest('a, button')) return;
        location.hash = `#agent/${agentPath(a.agent)}`;
      });
      return tr;
    }));
    if (focusedId !== null) {
      const again = Array.from(tbody.rows).find((r) => r.dataset.agent === focusedId);
      if (again) $('a', again).focus();
    }
    if (data.agents.length === 0) {
      body.replaceChildren(emptyState('No agents yet. Register one with POST /v1/agents or the SDK\'s register().'));
    } else {
      body.replaceChildren(...[h('div', { class: 'table-wrap' }, table), rows.length ? null : emptyState('No agent matches this filter: clear the filter or pick another status.')].filter(Boolean));
    }
    count.textContent = `${rows.length} of ${data.total} agent${data.total === 1 ? '' : 's'} shown${data.total > data.agents.length ? ` (the ${data.agents.length} lowest scores are listed)` : ''}.`;
    asOf.replaceChildren('As of entry ', String(data.as_of_index), ' (', timeEl(data.as_of_time), `). Refreshes every ${POLL_MS / 1000} s and on live events.`);
  };

  filterInput.addEventListener('input', () => { agentsFilter.text = filterInput.value; draw(); });
  statusSelect.addEventListener('change', () => { agentsFilter.status = statusSelect.value; draw(); });
  drawHead();

  const load = async () => {
    try {
      data = await api('/v1/console/agents', { signal });
      draw();
      ready(root);
    } catch (e) {
      if (isAbort(e)) return;
      body.replaceChildren(errorBox(e, 'The agents could not be read'));
      ready(root);
    }
  };
  const refresh = throttled(load, REFRESH_GAP_MS, signal);
  every(POLL_MS, signal, refresh);
  session.feed.on((msg) => { if (msg.event) refresh(); }, signal);
  return load();
}

// Agent detail ------------------------------------------------------------------------

function mountAgent(root, id, signal) {
  const head = viewHeader(id);
  head.querySelector('h1').classList.add('agent-title');
  const summaryBox = h('div', { class: 'summary-row' });
  const rest = h('div');
  const content = h('div', { id: 'agent-detail' }, h('p', { class: 'hint' }, 'Loading…'));
  root.append(h('p', null, h('a', { href: '#agents' }, '← All agents')), head, content);
  const note = h('input', { id: 'action-note', type: 'text', maxlength: '1000', autocomplete: 'off' });
  const result = h('p', { id: 'action-result', 'aria-live': 'polite', class: 'result' });
  const confirmBox = h('div', { id: 'action-confirm', class: 'confirm', hidden: true });
  let detail = null;

  const quarantineButton = h('button', { id: 'quarantine', type: 'button', class: 'danger', onclick: () => ask('quarantine') }, 'Quarantine…');
  const reinstateButton = h('button', { id: 'reinstate', type: 'button', onclick: () => ask('reinstate') }, 'Reinstate…');
  const actions = h('section', { class: 'card actions', 'aria-labelledby': 'actions-title' },
    h('h2', { id: 'actions-title' }, 'Admin actions'),
    h('p', { class: 'hint' }, 'Quarantine revokes the agent (every entry but attestations is refused); reinstating needs a successful attestation after the revocation. Both are recorded in the log.'),
    h('div', { class: 'form-row' }, h('label', { for: 'action-note' }, 'Note (optional, recorded in the log)'), note),
    h('div', { class: 'buttons' }, quarantineButton, reinstateButton),
    confirmBox, result);

  function ask(action) {
    const verb = action === 'quarantine' ? 'Quarantine' : 'Reinstate';
    const consequence = action === 'quarantine'
      ? 'This appends a revocation entry: the agent\'s actions and tokens are refused until it is reinstated.'
      : 'This appends a reinstatement entry: the agent starts again at the policy\'s initial score.';
    const yes = h('button', { id: 'confirm-action', type: 'button', class: action === 'quarantine' ? 'danger' : '', onclick: () => act(action) }, `Yes, ${verb.toLowerCase()}`);
    const no = h('button', { id: 'cancel-action', type: 'button', class: 'secondary', onclick: () => { confirmBox.hidden = true; confirmBox.replaceChildren(); (action === 'quarantine' ? quarantineButton : reinstateButton).focus(); } }, 'Cancel');
    confirmBox.replaceChildren(h('p', null, `${verb} ${id}? ${consequence}`), h('div', { class: 'buttons' }, yes, no));
    confirmBox.hidden = false;
    yes.focus();
  }

  async function act(action) {
    confirmBox.hidden = true;
    confirmBox.replaceChildren();
    quarantineButton.disabled = true;
    reinstateButton.disabled = true;
    result.className = 'result';
    result.textContent = action === 'quarantine' ? 'Quarantining…' : 'Reinstating…';
    const text = note.value.trim();
    try {
      const done = await api(`/v1/agents/${agentPath(id)}/${action}`, { method: 'POST', body: text ? { note: text } : {}, signal });
      result.replaceChildren(action === 'quarantine' ? 'Quarantined: revocation recorded at entry ' : 'Reinstated: reinstatement recorded at entry ', entryLink(done.index), '.');
      result.className = 'result good';
      note.value = '';
    } catch (e) {
      if (isAbort(e)) return;
      result.textContent = `${action === 'quarantine' ? 'Quarantine' : 'Reinstatement'} refused: ${describe(e)}`;
      result.className = 'result bad';
    }
    await load();
  }

  const load = async () => {
    try {
      detail = await api(`/v1/console/agents/${agentPath(id)}`, { signal });
    } catch (e) {
      if (isAbort(e)) return;
      if (e instanceof ApiError && e.status === 404) content.replaceChildren(emptyState(`No agent ${id} is registered in this log.`), errorBox(e));
      else content.replaceChildren(errorBox(e, 'The agent could not be read'));
      ready(root);
      return;
    }
    draw(detail);
    ready(root);
  };

  function draw(d) {
    const t = d.trust || {};
    const comp = t.components || {};
    quarantineButton.disabled = d.status !== 'active';
    reinstateButton.disabled = !(d.status === 'quarantined' || d.status === 'revoked');
    const pe = (d.passport && d.passport.entry) || {};
    const history = Array.isArray(d.history) ? d.history : [];
    const rotations = history.filter((p) => p.kind === 'rotation');
    summaryBox.replaceChildren(
      h('p', { id: 'agent-status' }, 'Status: ', statusBadge(d.status)),
      h('p', { id: 'agent-score' }, 'Score: ', h('strong', null, String(t.score)), ' ', levelBadge(t.level)),
      h('p', null, 'As of entry ', String(t.as_of_index), ' (', timeEl(t.as_of_time), ')'));
    // The actions block stays in place: a note being typed keeps its focus.
    if (!actions.isConnected) content.replaceChildren(summaryBox, actions, rest);
    keepingFocus(rest, () => rest.replaceChildren(
      h('section', { class: 'card', 'aria-labelledby': 'chart-title' },
        h('h2', { id: 'chart-title' }, 'Score over time'),
        scoreChart(history, t),
        history.length ? null : emptyState('No score history yet: entries that move the score appear here.')),
      h('section', { class: 'card', 'aria-labelledby': 'moves-title' },
        h('h2', { id: 'moves-title' }, 'Entries that moved the score'),
        history.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'history-table', class: 'data' },
          h('thead', null, h('tr', null, ['Entry', 'Kind', 'Time', 'Score', 'Level'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, history.slice().reverse().map((p) => h('tr', { dataset: { index: String(p.index), kind: p.kind } },
            h('td', null, entryLink(p.index)), h('td', null, p.kind), h('td', null, timeEl(p.time)),
            h('td', { class: 'num' }, String(p.score)), h('td', null, levelBadge(p.level)))))))
          : emptyState('No entries yet.')),
      h('div', { class: 'two-col' },
        h('section', { class: 'card', id: 'passport', 'aria-labelledby': 'passport-title' },
          h('h2', { id: 'passport-title' }, 'Passport'),
          dl([
            ['Owner', h('span', { id: 'passport-owner' }, pe.owner ?? d.owner ?? '—')],
            ['Purpose', pe.purpose ?? d.purpose ?? '—'],
            ['Code hash', mono(pe.code_hash)],
            pe.model_hash ? ['Model hash', mono(pe.model_hash)] : null,
            pe.image_digest ? ['Image digest', mono(pe.image_digest)] : null,
            ['Registration key', mono(pe.public_key)],
            pe.tpm_ak ? ['TPM attestation key', mono(pe.tpm_ak)] : null,
            ['Registered', d.passport ? [entryLink(d.passport.index), ' ', timeEl(d.passport.time)] : '—'],
            ['Key in force since', d.key_index === undefined || d.key_index === null ? '—' : entryLink(d.key_index)],
            ['Retired', d.retired === null || d.retired === undefined ? 'no' : entryLink(d.retired)],
          ])),
        h('section', { class: 'card', 'aria-labelledby': 'trust-title' },
          h('h2', { id: 'trust-title' }, 'Trust components'),
          dl([
            ['Evidence for', `${(comp.evidence_for_milli ?? 0) / 1000}`],
            ['Evidence against', `${(comp.evidence_against_milli ?? 0) / 1000}`],
            ['Expectation', `${(comp.expectation_permille ?? 0) / 10} %`],
            ['Freshness', `${(comp.freshness_permille ?? 0) / 10} %`],
            ['Last attestation', d.last_attestation ? [entryLink(d.last_attestation.index), ' ', timeEl(d.last_attestation.time), ` (${d.last_attestation.evidence})`] : 'never'],
            // `quarantined` means revoked, by score or by an admin.
            ['Revoked', comp.quarantined ? 'yes' : 'no'],
            ['Revoked at', comp.revoked_at === null || comp.revoked_at === undefined ? 'not revoked' : entryLink(comp.revoked_at)],
            ['Policy', t.policy_index === null || t.policy_index === undefined ? 'built-in default' : entryLink(t.policy_index)],
          ]))),
      h('section', { class: 'card', 'aria-labelledby': 'rotations-title' },
        h('h2', { id: 'rotations-title' }, 'Key rotations'),
        rotations.length
          ? h('ul', { id: 'rotations' }, rotations.map((p) => h('li', null, 'Rotated at ', entryLink(p.index), ' ', timeEl(p.time))))
          : null,
        // The history keeps the latest points only: a key set by an
        // older rotation is named, not claimed absent.
        d.passport && d.key_index !== d.passport.index && !rotations.some((p) => p.index === d.key_index)
          ? h('p', null, 'The key in force was set by the rotation at ', entryLink(d.key_index), '; older rotations are beyond the history kept here.')
          : null,
        !rotations.length && d.passport && d.key_index === d.passport.index
          ? emptyState('No key rotation: the passport\'s key is in force.') : null)));
  }

  const refresh = throttled(async () => { if (confirmBox.hidden) await load(); }, REFRESH_GAP_MS, signal);
  every(POLL_MS * 2, signal, refresh);
  session.feed.on((msg) => { if (msg.event && msg.event.agent === id) refresh(); }, signal);
  return load();
}

/** The score history as an SVG line chart: one marker per entry plus "now". */
function scoreChart(history, trust) {
  const points = history.map((p) => ({ ...p }));
  if (trust && typeof trust.score === 'number') {
    points.push({ index: null, kind: 'now', score: trust.score, time: trust.as_of_time, level: trust.level });
  }
  const W = 640;
  const H = 240;
  const m = { l: 44, r: 16, t: 12, b: 34 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const x = (i) => m.l + (points.length > 1 ? (i * pw) / (points.length - 1) : pw / 2);
  const y = (score) => m.t + ((100 - Math.max(0, Math.min(100, score))) * ph) / 100;
  const first = points[0];
  const last = points[points.length - 1];
  const svg = s('svg', {
    id: 'score-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'score-chart-title score-chart-desc',
    class: 'chart', preserveAspectRatio: 'xMidYMid meet',
  },
  s('title', { id: 'score-chart-title' }, 'Trust score over time'),
  s('desc', { id: 'score-chart-desc' }, points.length
    ? `${points.length} points, from ${first.score} to ${last.score} (scale 0 to 100).`
    : 'No points.'));
  for (const v of [0, 25, 50, 75, 100]) {
    svg.append(s('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: m.l - 8, y: y(v) + 4, class: 'axis-label', 'text-anchor': 'end' }, String(v)));
  }
  svg.append(s('text', { x: 12, y: m.t + ph / 2, class: 'axis-title', transform: `rotate(-90 12 ${m.t + ph / 2})`, 'text-anchor': 'middle' }, 'score'));
  if (points.length) {
    svg.append(s('text', { x: m.l, y: H - 10, class: 'axis-label', 'text-anchor': 'start' }, timeText(first.time)),
      s('text', { x: W - m.r, y: H - 10, class: 'axis-label', 'text-anchor': 'end' }, `${timeText(last.time)}${last.kind === 'now' ? ' (now)' : ''}`));
    svg.append(s('polyline', { class: 'score-line', points: points.map((p, i) => `${x(i).toFixed(1)},${y(p.score).toFixed(1)}`).join(' ') }));
  }
  points.forEach((p, i) => {
    const when = timeText(p.time, true);
    const label = p.kind === 'now'
      ? `now: score ${p.score}${p.level ? ` (${p.level} risk)` : ''}, ${when}`
      : `entry ${p.index}: ${p.kind}, score ${p.score}${p.level ? ` (${p.level} risk)` : ''}, ${when}`;
    const circle = s('circle', {
      cx: x(i).toFixed(1), cy: y(p.score).toFixed(1), r: p.kind === 'now' ? 6 : 4.5,
      class: `point kind-${safeClass(p.kind)}`, dataset: { kind: p.kind, score: String(p.score), index: p.index === null ? 'now' : String(p.index) },
    }, s('title', null, label));
    svg.append(circle);
  });
  return h('figure', { class: 'chart-wrap' }, svg,
    h('figcaption', { class: 'hint' }, 'Each marker is an entry that moved the score (hover for its index, kind, score and time); the last is the score now.'));
}

function timeText(ms, long) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : (long ? timeFormat : shortTime).format(d);
}

// Live events -------------------------------------------------------------------------

function describeEvent(ev) {
  const e = ev.entry || {};
  switch (ev.type) {
    case 'revocation': {
      const note = e.note ? `: ${e.note}` : '';
      if (e.reason === 'quarantine') return `quarantined by an admin${note}`;
      if (e.reason === 'score') return `revoked: score ${e.score} fell below the threshold ${e.threshold}${note}`;
      return `revoked (${e.reason || 'no reason given'})${note}`;
    }
    case 'reinstatement':
      return `reinstated after the attestation at entry ${e.attestation_index}${e.note ? `: ${e.note}` : ''}`;
    case 'risk-level-change':
      return `risk level ${e.previous} → ${e.current} (score ${e.score})`;
    case 'signal': {
      const subject = typeof e.subject === 'string' ? '' : e.subject && e.subject.code_hash ? ` about code ${String(e.subject.code_hash).slice(0, 12)}…` : '';
      return `${e.severity || ''} ${e.type || 'signal'} from ${e.source || 'unknown source'}${subject}`;
    }
    default:
      return ev.type;
  }
}

function eventItem(ev) {
  return h('li', { class: `event type-${safeClass(ev.type)}`, dataset: { index: String(ev.index), type: ev.type, agent: ev.agent || '' } },
    h('span', { class: `badge ev-${safeClass(ev.type)}` }, ev.type),
    ' ',
    ev.agent ? agentLink(ev.agent) : h('span', { class: 'muted' }, 'no single agent'),
    ' ',
    h('span', { class: 'what' }, describeEvent(ev)),
    ' ',
    timeEl(ev.integrated_time),
    ' ',
    entryLink(ev.index, `entry #${ev.index}`));
}

function mountEvents(root, _arg, signal) {
  const feed = session.feed;
  const status = h('p', { id: 'events-status', class: 'live', role: 'status' });
  const list = h('ol', { id: 'events-list', class: 'events', 'aria-live': 'polite', reversed: true });
  const empty = emptyState('No events yet. Revocations, reinstatements, risk-level changes and signals appear here as the log records them.');
  const showStatus = () => {
    const last = feed.lastId !== null && feed.lastId !== '-1' ? ` (last event id ${feed.lastId})` : '';
    status.textContent = `Connection: ${feed.state.text}${last}`;
    status.dataset.state = feed.state.kind;
  };
  root.append(viewHeader('Live events'),
    h('p', { class: 'hint' }, `Newest first: the last ${EVENTS_REPLAYED} entries' events, then each new one as the log appends it.`),
    status, empty, list);
  list.replaceChildren(...feed.events.map(eventItem));
  empty.hidden = feed.events.length > 0;
  showStatus();
  feed.on((msg) => {
    if (msg.state) { showStatus(); return; }
    const ev = msg.event;
    const item = eventItem(ev);
    const before = Array.from(list.children).find((li) => Number(li.dataset.index) < ev.index);
    list.insertBefore(item, before || null);
    while (list.children.length > EVENTS_KEPT) list.lastElementChild.remove();
    empty.hidden = true;
    showStatus();
  }, signal);
  ready(root);
}

// Escalations -------------------------------------------------------------------------

function mountEscalations(root, _arg, signal) {
  const outcome = h('p', { id: 'escalation-outcome', class: 'result', 'aria-live': 'polite' });
  const list = h('ul', { id: 'escalations-list', class: 'escalations' });
  const empty = emptyState('No escalation waits for a decision. Agents asking for a token of a class that needs a human appear here.');
  const error = h('div', { 'aria-live': 'polite' });
  root.append(viewHeader('Escalations'),
    h('p', { class: 'hint' }, 'Token requests that need a human. Approving issues the token to the agent; denying refuses it. Both are recorded in the log.'),
    outcome, error, empty, list);
  const items = new Map();

  function item(p) {
    const note = h('input', { type: 'text', id: `note-${p.escalation}`, maxlength: '1000', autocomplete: 'off' });
    const buttons = [];
    const decide = async (verdict) => {
      for (const b of buttons) b.disabled = true;
      outcome.className = 'result';
      outcome.textContent = `${verdict === 'approve' ? 'Approving' : 'Denying'} escalation ${p.escalation}…`;
      const text = note.value.trim();
      try {
        const done = await api(`/v1/escalations/${p.escalation}/${verdict}`, { method: 'POST', body: text ? { note: text } : {}, signal });
        // The answer is `{escalation, outcome, decision_index, token_index}`.
        const decision = done.decision_index ?? done.index;
        fill(outcome, `Escalation ${p.escalation} ${done.outcome || (verdict === 'approve' ? 'approved' : 'denied')}: decision recorded at entry `,
          entryLink(decision), done.token_index === null || done.token_index === undefined ? '.' : [', token at entry ', entryLink(done.token_index), '.']);
        outcome.className = 'result good';
        outcome.dataset.escalation = String(p.escalation);
        outcome.dataset.decision = verdict;
        items.get(p.escalation)?.remove();
        items.delete(p.escalation);
        empty.hidden = items.size > 0;
      } catch (e) {
        if (isAbort(e)) return;
        outcome.textContent = `Escalation ${p.escalation} could not be ${verdict === 'approve' ? 'approved' : 'denied'}: ${describe(e)}`;
        outcome.className = 'result bad';
        for (const b of buttons) b.disabled = false;
      }
      await load();
    };
    // Approving issues a token: a second step names what it allows, so a
    // click on a list that moved (or on look-alike text) issues nothing.
    const confirmApprove = h('button', { type: 'button', class: 'confirm-approve', dataset: { escalation: String(p.escalation) }, onclick: () => decide('approve') }, 'Confirm approval');
    const confirmRow = h('div', { class: 'confirm', role: 'group', 'aria-label': `Confirm escalation ${p.escalation}`, hidden: true },
      h('p', null, 'Issue a token to ', agentLink(p.agent), ' for ', mono(p.action), ' on ', mono(p.resource), '?'),
      h('div', { class: 'buttons' }, confirmApprove,
        h('button', { type: 'button', class: 'secondary', onclick: () => { confirmRow.hidden = true; approve.focus(); } }, 'Cancel')));
    const approve = h('button', { type: 'button', class: 'approve', dataset: { escalation: String(p.escalation) }, onclick: () => { confirmRow.hidden = false; confirmApprove.focus(); } }, 'Approve…');
    buttons.push(approve, confirmApprove,
      h('button', { type: 'button', class: 'deny danger', dataset: { escalation: String(p.escalation) }, onclick: () => decide('deny') }, 'Deny'));
    const history = Array.isArray(p.history) ? p.history : [];
    const scoreNow = h('span', { class: 'score-now' }, String(p.score_now ?? '—'));
    const node = h('li', { class: 'card escalation', dataset: { escalation: String(p.escalation), agent: p.agent } },
      h('h2', null, `Escalation `, entryLink(p.escalation), `: ${p.action} on ${p.resource}`),
      dl([
        ['Agent', agentLink(p.agent)],
        ['Action', mono(p.action)],
        ['Resource', mono(p.resource)],
        ['Class', p.class],
        ['Score', ['at request ', String(p.score_at_request ?? '—'), ', now ', scoreNow]],
        ['Expires', timeEl(p.expires_at)],
        p.constraints !== undefined && p.constraints !== null ? ['Constraints', h('pre', { class: 'json' }, JSON.stringify(p.constraints, null, 2))] : null,
      ]),
      h('details', { open: true }, h('summary', null, `Recent history of the agent (${history.length})`),
        history.length ? h('ul', { class: 'history' }, history.map((e) => h('li', null, entryLink(e.index), ` ${e.kind}${e.action ? ` ${e.action}` : ''} `, timeEl(e.integrated_time))))
          : emptyState('No recent entries.')),
      h('div', { class: 'form-row' }, h('label', { for: `note-${p.escalation}` }, 'Note (optional)'), note),
      h('div', { class: 'buttons' }, approve, buttons[2]), confirmRow);
    node.update = (q) => { scoreNow.textContent = String(q.score_now ?? '—'); };
    return node;
  }

  const load = async () => {
    let got;
    try {
      got = await api('/v1/escalations', { signal });
      error.replaceChildren();
    } catch (e) {
      if (isAbort(e)) return;
      error.replaceChildren(errorBox(e, 'The escalations could not be read'));
      ready(root);
      return;
    }
    const pending = (got.pending || []).filter((p) => !p.status || p.status === 'pending');
    const keep = new Set(pending.map((p) => p.escalation));
    for (const [k, node] of items) if (!keep.has(k)) { node.remove(); items.delete(k); }
    let prev = null;
    for (const p of pending) {
      let node = items.get(p.escalation);
      if (node) node.update(p);
      else { node = item(p); items.set(p.escalation, node); }
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== node) list.insertBefore(node, want);
      prev = node;
    }
    empty.hidden = items.size > 0;
    ready(root);
  };
  every(POLL_MS * 1.5, signal, load);
  return load();
}

// Log health --------------------------------------------------------------------------

function sparkline(id, label, series, pick, unit) {
  const W = 300;
  const H = 60;
  const values = series.map(pick);
  const svg = s('svg', { id, viewBox: `0 0 ${W} ${H}`, class: 'sparkline', role: 'img', 'aria-label': label });
  if (values.length === 0) return svg;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const x = (i) => (values.length > 1 ? (i * (W - 4)) / (values.length - 1) + 2 : W / 2);
  const y = (v) => H - 4 - ((v - lo) * (H - 8)) / span;
  svg.append(s('title', null, `${label}: ${values.length} samples, now ${fmtNum(values[values.length - 1])}${unit}, min ${fmtNum(lo)}${unit}, max ${fmtNum(hi)}${unit}`),
    s('polyline', { class: 'spark-line', points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
  return svg;
}

function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function mountHealth(root, _arg, signal) {
  const f = {};
  const field = (name) => (f[name] = h('dd', { id: `health-${name}` }, '…'));
  const stats = h('dl', { class: 'stats' },
    [['tree-size', 'Tree size'], ['appended', 'Appended since start'], ['rate', 'Append rate'], ['agents', 'Agents'],
      ['latency', 'Commit latency p50 / p90 / p99'], ['prover', 'Prover queue'], ['sequencer', 'Sequencer queue'],
      ['subscribers', 'Event subscribers']]
      .map(([k, label]) => h('div', { class: 'stat' }, h('dt', null, label), field(k))));
  const treeSpark = h('div', { class: 'spark' });
  const rateSpark = h('div', { class: 'spark' });
  const cpFacts = h('div');
  const note = h('pre', { id: 'checkpoint-note', class: 'note' });
  const witnesses = h('div', { id: 'witnesses' });
  const verify = verifyPanel(signal, {});
  root.append(viewHeader('Log health'),
    h('section', { class: 'card', 'aria-labelledby': 'numbers-title' }, h('h2', { id: 'numbers-title' }, 'Now'), stats,
      h('div', { class: 'two-col' },
        h('figure', null, h('figcaption', null, 'Tree size over time'), treeSpark),
        h('figure', null, h('figcaption', null, 'Append rate over time (entries/s)'), rateSpark)),
      h('p', { class: 'hint' }, 'Sampled every 2 s while you are signed in; kept in this tab only.')),
    h('section', { class: 'card', 'aria-labelledby': 'cp-title' }, h('h2', { id: 'cp-title' }, 'Latest checkpoint'), cpFacts, note),
    h('section', { class: 'card', 'aria-labelledby': 'wit-title' }, h('h2', { id: 'wit-title' }, 'Witnesses'), witnesses),
    verify.node);

  let indexSet = false;
  const draw = (hl) => {
    const series = session.health.series;
    const last = series[series.length - 1];
    f['tree-size'].textContent = String(hl.tree_size);
    f.appended.textContent = String(hl.appended_entries);
    f.rate.textContent = last ? `${fmtNum(last.rate)} entries/s` : '—';
    f.agents.textContent = String(hl.agents);
    const lat = hl.commit_latency_ms;
    f.latency.textContent = lat ? `${fmtNum(lat.p50)} / ${fmtNum(lat.p90)} / ${fmtNum(lat.p99)} ms (${lat.count} commits)` : 'no commit yet';
    f.prover.textContent = String(hl.prover_queue);
    f.sequencer.textContent = `${hl.sequencer_queue_bytes} bytes`;
    f.subscribers.textContent = String(hl.event_subscribers);
    treeSpark.replaceChildren(sparkline('tree-sparkline', 'Tree size', series, (p) => p.size, ''));
    rateSpark.replaceChildren(sparkline('rate-sparkline', 'Append rate', series, (p) => p.rate, ' entries/s'));
    note.textContent = hl.checkpoint;
    try {
      const cp = parseCheckpoint(hl.checkpoint);
      cpFacts.replaceChildren(dl([
        ['Origin', mono(cp.origin)], ['Size', h('span', { id: 'checkpoint-size' }, String(cp.size))],
        ['Root', mono(toHex(cp.root))], ['Log key', mono(hl.log_key)],
        ['Signatures', String(cp.sigs.length)],
      ]));
    } catch (e) {
      cpFacts.replaceChildren(h('p', { class: 'error' }, `The checkpoint could not be read: ${e.message}`));
    }
    const w = hl.witnesses || {};
    const list = w.witnesses || [];
    witnesses.replaceChildren(
      h('p', null, `Quorum ${w.quorum ?? 0}; witnessed size: ${w.witnessed === null || w.witnessed === undefined ? 'none yet' : w.witnessed}.`),
      list.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'witness-table', class: 'data' },
        h('thead', null, h('tr', null, ['Witness', 'Cosigned size', 'Failures', 'Last error', 'Key'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, list.map((x) => h('tr', { dataset: { witness: x.name } },
          h('th', { scope: 'row' }, x.name, h('br'), h('span', { class: 'muted' }, x.url || '')),
          h('td', { class: 'num' }, String(x.cosigned_size)), h('td', { class: 'num' }, String(x.failures)),
          h('td', null, x.last_error || 'none'), h('td', null, mono(x.key)))))))
        : emptyState('No witness is configured: checkpoints carry only the log\'s signature. Add witnesses with the server\'s witness options.'));
    if (!indexSet && hl.tree_size > 0 && verify.indexInput.value === '') {
      verify.indexInput.value = String(hl.tree_size - 1);
      indexSet = true;
    }
    root.dataset.treeSize = String(hl.tree_size);
    ready(root);
  };
  session.health.on(draw, signal);
  if (session.health.latest) draw(session.health.latest);
  return api('/v1/console/health', { signal }).then((hl) => session.health.record(hl)).catch((e) => {
    if (!isAbort(e)) root.append(errorBox(e, 'Log health could not be read'));
  });
}

// Entry -------------------------------------------------------------------------------

function mountEntry(root, arg, signal) {
  const index = Number(arg);
  root.append(viewHeader(`Entry ${arg}`));
  if (!/^[0-9]+$/.test(arg) || !Number.isSafeInteger(index)) {
    root.append(emptyState('An entry is named by its index, a whole number: #entry/42.'));
    ready(root);
    return undefined;
  }
  const content = h('div', { id: 'entry-detail' }, h('p', { class: 'hint' }, 'Loading…'));
  const verify = verifyPanel(signal, { index, fixed: true });
  root.append(h('p', { class: 'pager' },
    index > 0 ? h('a', { href: `#entry/${index - 1}` }, `← Entry ${index - 1}`) : null, ' ',
    h('a', { href: `#entry/${index + 1}` }, `Entry ${index + 1} →`)), content, verify.node);
  return api(`/v1/console/entries/${index}`, { signal }).then((got) => {
    // What is shown is the leaf bytes themselves, which "Verify" hashes
    // and proves, not the server's decoding of them.
    const leaf = b64decode(got.leaf);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(leaf);
    const e = JSON.parse(text);
    if (String(got.index) !== String(index)) throw new Error(`asked for entry ${index}, the server answered with entry ${got.index}`);
    verify.setEntry(got);
    content.replaceChildren(dl([
      ['Index', h('span', { id: 'entry-index' }, String(got.index))],
      ['Kind', String(e.kind ?? '—')],
      ['Integrated', timeEl(e.integrated_time)],
      typeof e.agent === 'string' ? ['Agent', agentLink(e.agent)] : null,
      ['Leaf', `${leaf.length} bytes`],
      ['In tree of size', String(got.tree_size)],
    ]), h('h2', null, 'Entry'), h('pre', { id: 'entry-json', class: 'json' }, indentJson(text)));
    ready(root);
  }).catch((err) => {
    if (isAbort(err)) return;
    content.replaceChildren(...[err instanceof ApiError && err.status === 404
      ? emptyState(`There is no entry ${index} yet: the log has fewer entries.`) : null, errorBox(err, 'The entry could not be read')].filter(Boolean));
    ready(root);
  });
}

/**
 * Compact JSON laid out with two-space indents, character by character, so
 * that numbers keep every digit (JSON.parse would round those past 2^53).
 */
function indentJson(text) {
  let out = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  const newline = () => `\n${'  '.repeat(depth)}`;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') { inString = true; out += ch; } else if (ch === '{' || ch === '[') {
      const close = ch === '{' ? '}' : ']';
      if (text[i + 1] === close) { out += ch + close; i += 1; continue; }
      depth += 1;
      out += ch + newline();
    } else if (ch === '}' || ch === ']') {
      depth -= 1;
      out += newline() + ch;
    } else if (ch === ',') out += `,${newline()}`;
    else if (ch === ':') out += ': ';
    else out += ch;
  }
  return out;
}

// --- routing ------------------------------------------------------------------------

let current = null;

function parseRoute() {
  const raw = location.hash.replace(/^#/, '');
  const slash = raw.indexOf('/');
  const name = slash < 0 ? raw : raw.slice(0, slash);
  let arg = slash < 0 ? '' : raw.slice(slash + 1);
  try { arg = decodeURIComponent(arg); } catch { /* keep it as typed */ }
  if (!name) return { name: 'agents', arg: '' };
  return { name, arg };
}

function route() {
  if (!session) return;
  if (current) current.abort();
  const ctrl = new AbortController();
  session.signal.addEventListener('abort', () => ctrl.abort(), { once: true });
  current = ctrl;
  const { name, arg } = parseRoute();
  const view = VIEWS[name];
  const root = h('div', { class: `view view-${safeClass(name)}`, dataset: { view: name, state: 'loading' } });
  $('#view').replaceChildren(root);
  for (const a of document.querySelectorAll('#nav a[data-nav]')) {
    if (view && a.dataset.nav === view.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.view = name;
  if (!session.health.failing) setStatusMessage('');
  if (!view) {
    root.append(viewHeader('Nothing here'), emptyState('This address names no view: pick one in the navigation above.'));
    document.title = 'Agent Ledger console';
    ready(root);
    return;
  }
  document.title = `${name === 'agent' ? arg : view.title} · Agent Ledger console`;
  Promise.resolve(view.mount(root, arg, ctrl.signal)).catch((e) => {
    if (!isAbort(e)) root.append(errorBox(e));
  });
  const title = $('#view-title', root);
  if (title && session.navigated) title.focus({ preventScroll: true });
  session.navigated = true;
}

// --- signing in and out -----------------------------------------------------------

function showLogin(message) {
  $('#login-view').hidden = false;
  $('#app-view').hidden = true;
  $('#nav').hidden = true;
  $('#session').hidden = true;
  $('#view').replaceChildren();
  $('#login-error').textContent = message || '';
  delete document.body.dataset.ready;
  delete document.body.dataset.view;
  document.title = 'Sign in · Agent Ledger console';
  $('#token').focus();
}

function endSession(message) {
  token = null;
  if (current) { current.abort(); current = null; }
  if (session) { session.ctrl.abort(); session = null; }
  showLogin(message);
}

async function signIn(candidate) {
  const submit = $('#login-submit');
  const error = $('#login-error');
  submit.disabled = true;
  error.textContent = 'Checking the token…';
  let health;
  try {
    health = await api('/v1/console/health', { bearer: candidate });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) error.textContent = 'That token was refused by the server (unauthorized). Check LEDGER_ADMIN_TOKEN and try again.';
    else if (e instanceof ApiError && e.code === 'admin_disabled') error.textContent = `This server has no admin token, so the console is off: ${e.message} (admin_disabled).`;
    else error.textContent = describe(e);
    return;
  } finally {
    submit.disabled = false;
  }
  token = candidate;
  $('#token').value = '';
  error.textContent = '';
  const ctrl = new AbortController();
  session = { ctrl, signal: ctrl.signal, feed: new EventFeed(ctrl.signal), health: new HealthPoll(ctrl.signal), navigated: false };
  session.health.record(health);
  session.health.start();
  session.feed.run(Math.max(-1, Number(health.tree_size) - 1 - EVENTS_REPLAYED));
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  $('#nav').hidden = false;
  $('#session').hidden = false;
  if (!location.hash) history.replaceState(null, '', '#agents');
  route();
}

function init() {
  $('#login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const candidate = $('#token').value.trim();
    if (!candidate) {
      $('#login-error').textContent = 'Type the admin token first.';
      return;
    }
    performance.mark('agent-ledger:sign-in');
    signIn(candidate);
  });
  $('#logout').addEventListener('click', () => endSession('Logged out: the token is forgotten.'));
  window.addEventListener('hashchange', route);
  showLogin('');
  document.body.dataset.login = 'ready';
  performance.mark('agent-ledger:login-interactive');
}

init();
