// What a signed-in session keeps running: the live event stream (fetch +
// an SSE parser, reconnecting with Last-Event-ID) and the health poll.

import { ApiError, NetworkError, api, describe, expire, isAbort, session, token } from './api.js';
import { $, POLL_MS, every, setStatusMessage, sleep } from './dom.js';

const EVENT_TYPES = ['revocation', 'reinstatement', 'risk-level-change', 'signal'];
export const EVENTS_KEPT = 500;
export const EVENTS_REPLAYED = 200;
const SERIES_KEPT = 600;

// --- the live event stream (fetch + SSE parser, reconnect with Last-Event-ID) ----

export class EventFeed {
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
        if (resp.status === 401) { expire('The server refused the token (unauthorized): sign in again.'); return; }
        if (resp.status === 403) { expire('This server has no admin token: its admin routes, and so this console, are disabled (admin_disabled).'); return; }
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

export class HealthPoll {
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

  /** Takes a health answer: its size samples newer than those kept join the series. */
  record(health) {
    this.latest = health;
    for (const sample of Array.isArray(health.series) ? health.series : []) {
      const last = this.series[this.series.length - 1];
      if (last && sample.time <= last.time) continue;
      // Entries appended per second since the previous sample (the
      // counter starts again when the server does).
      const rate = last ? Math.max(0, (sample.appended_entries - last.appended) * 1000 / (sample.time - last.time)) : 0;
      this.series.push({ time: sample.time, size: sample.tree_size, appended: sample.appended_entries, rate });
      if (this.series.length > SERIES_KEPT) this.series.shift();
    }
    for (const fn of this.listeners) fn(health);
  }

  start() {
    every(POLL_MS, this.signal, async () => {
      try {
        const last = this.series[this.series.length - 1];
        this.record(await api(`/v1/console/health${last ? `?after=${last.time}` : ''}`, { signal: this.signal }));
        if (this.failing) { this.failing = false; setStatusMessage(''); }
      } catch (e) {
        if (isAbort(e) || !session) return;
        this.failing = true;
        setStatusMessage(`Log health could not be read: ${describe(e)}`, true);
      }
    });
  }
}
