// Agent Ledger console: plain ES modules, no dependencies, served under a
// strict CSP (script-src 'self', no inline code or style). This module
// routes between the views and signs in and out.

import { ApiError, api, describe, isAbort, session, setOnExpired, setSession, setToken } from './api.js';
import { $, emptyState, errorBox, h, ready, safeClass, setStatusMessage, viewHeader } from './dom.js';
import { EVENTS_REPLAYED, EventFeed, HealthPoll } from './feed.js';
import { mountAgent, mountAgents } from './agents.js';
import { mountEntry, mountEscalations, mountEvents, mountHealth } from './views.js';

/** Each view: `mount(root, arg, signal)`; the signal aborts when it is left. */
const VIEWS = {
  agents: { nav: 'agents', title: 'Agents', mount: mountAgents },
  agent: { nav: 'agents', title: 'Agent', mount: mountAgent },
  events: { nav: 'events', title: 'Live events', mount: mountEvents },
  escalations: { nav: 'escalations', title: 'Escalations', mount: mountEscalations },
  health: { nav: 'health', title: 'Log health', mount: mountHealth },
  entry: { nav: null, title: 'Entry', mount: mountEntry },
};

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
  setToken(null);
  if (current) { current.abort(); current = null; }
  if (session) { session.ctrl.abort(); setSession(null); }
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
  setToken(candidate);
  $('#token').value = '';
  error.textContent = '';
  const ctrl = new AbortController();
  setSession({ ctrl, signal: ctrl.signal, feed: new EventFeed(ctrl.signal), health: new HealthPoll(ctrl.signal), navigated: false });
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
  setOnExpired(endSession);
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
