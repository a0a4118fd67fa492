// Building the page: elements from values (never markup from data: every
// value that came from the server reaches the page through textContent or
// attributes), times in the viewer's zone with ISO on hover, scheduling.

import { agentPath, describe } from './api.js';

export const POLL_MS = 2000;
// Least time between two reloads of a view that live events ask for.
export const REFRESH_GAP_MS = 500;
const SVG_NS = 'http://www.w3.org/2000/svg';

// --- DOM building (never markup from data) -------------------------------------

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
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
export function fill(el, ...children) {
  el.replaceChildren();
  return build(el, null, children);
}

export const $ = (sel, root = document) => root.querySelector(sel);

export const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export const shortTime = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A time in the viewer's zone, the ISO-8601 UTC instant in `datetime` and `title`. */
export function timeEl(ms, format = timeFormat) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, 'never');
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return h('span', { class: 'muted' }, 'unknown time');
  const iso = d.toISOString();
  return h('time', { datetime: iso, title: iso }, format.format(d));
}

export function entryLink(index, label) {
  return h('a', { href: `#entry/${index}`, class: 'entry-link' }, label || `#${index}`);
}

export function agentLink(id) {
  return h('a', { href: `#agent/${agentPath(id)}`, class: 'agent-link' }, id);
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${safeClass(status)}`, dataset: { status: String(status) } }, String(status));
}

export function levelBadge(level) {
  return h('span', { class: `badge level-${safeClass(level)}` }, `${level} risk`);
}

export function safeClass(v) {
  return String(v).replace(/[^a-z0-9-]/gi, '_');
}

export function emptyState(text) {
  return h('p', { class: 'empty' }, text);
}

export function errorBox(err, prefix) {
  return h('p', { class: 'error', role: 'alert' }, prefix ? `${prefix}: ${describe(err)}` : describe(err));
}

export function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function mono(text) {
  return h('code', { class: 'mono' }, text === undefined || text === null ? '—' : String(text));
}

export function setStatusMessage(text, isError) {
  const el = $('#status-msg');
  if (!el) return;
  el.textContent = text || '';
  el.classList.toggle('error', Boolean(isError && text));
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** Runs `fn` every `ms` until `signal` aborts; never two at once. */
export function every(ms, signal, fn) {
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
export function throttled(fn, gapMs, signal) {
  let running = false;
  let again = false;
  let urgent = false;
  let last = 0;
  let timer = null;
  const run = async () => {
    timer = null;
    if (signal.aborted) return;
    if (running) { again = true; return; }
    const wait = urgent ? 0 : last + gapMs - Date.now();
    if (wait > 0) { timer = setTimeout(run, wait); return; }
    urgent = false;
    running = true;
    last = Date.now();
    try { await fn(); } finally {
      running = false;
      if (again) { again = false; poke(); }
    }
  };
  const poke = () => { if (!timer) run(); };
  // At once, without the gap (after the user's own action): still one
  // run at a time, so replies stay in order.
  poke.now = () => {
    urgent = true;
    clearTimeout(timer);
    timer = null;
    run();
  };
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  return poke;
}

/**
 * Runs `redraw`, which rebuilds what is inside `container`, then gives the
 * focus back to the same control (by id, sort key or link target) if it
 * was in there: a refresh never throws a keyboard user out.
 */
export function keepingFocus(container, redraw) {
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

export function viewHeader(title, ...extra) {
  return h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: '-1' }, title), extra);
}

export function ready(root) {
  root.dataset.state = 'ready';
  if (document.body.dataset.ready !== '1') performance.mark('agent-ledger:first-view');
  document.body.dataset.ready = '1';
}
