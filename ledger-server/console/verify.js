// Verification in the browser (WebCrypto): C2SP signed notes and
// cosignatures, RFC 9162 inclusion proofs, the pinned log key, and the
// "Verify in the browser" panel that runs them on an entry.

import { api, describe, isAbort } from './api.js';
import { every, h } from './dom.js';

const PIN_STORAGE = 'agent-ledger.pinned-log-key';

// --- bytes, hashes, signatures (WebCrypto) ---------------------------------------

const utf8 = new TextEncoder();

export function b64decode(text) {
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

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** SHA-256 of the parts concatenated (exported for the tests' vectors). */
export async function sha256(...parts) {
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
export function parseCheckpoint(text) {
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

/** RFC 9162 §2.1.3.2: verifying an inclusion proof (exported for the tests' vectors). */
export async function verifyInclusion(index, size, leafHash, path, root) {
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
export function verifyPanel(signal, { index, fixed }) {
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

/**
 * Compact JSON laid out with two-space indents, character by character, so
 * that numbers keep every digit (JSON.parse would round those past 2^53).
 */
export function indentJson(text) {
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
