// The agents table and an agent's page (score chart, entries that moved
// it, passport, rotations, quarantine and reinstatement).

import { ApiError, agentPath, api, describe, isAbort, session } from './api.js';
import { $, POLL_MS, REFRESH_GAP_MS, agentLink, dl, emptyState, entryLink, errorBox, every, h, keepingFocus, levelBadge, mono, ready, s, safeClass, shortTime, statusBadge, throttled, timeEl, timeFormat, viewHeader } from './dom.js';

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

export function mountAgents(root, _arg, signal) {
  const filterInput = h('input', { id: 'agent-filter', type: 'search', placeholder: 'id, owner or purpose', autocomplete: 'off', maxlength: '256' });
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

  // The filter applies at once to the rows shown, and on the server to
  // every agent (the table lists at most the 1,000 lowest scores).
  filterInput.addEventListener('input', () => { agentsFilter.text = filterInput.value; draw(); refresh(); });
  statusSelect.addEventListener('change', () => { agentsFilter.status = statusSelect.value; draw(); refresh(); });
  drawHead();

  const load = async () => {
    try {
      const query = new URLSearchParams();
      if (agentsFilter.text.trim()) query.set('q', agentsFilter.text.trim());
      if (agentsFilter.status) query.set('status', agentsFilter.status);
      const qs = query.toString();
      data = await api(`/v1/console/agents${qs ? `?${qs}` : ''}`, { signal });
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
  // Every load goes through `refresh`: one at a time, replies in order.
  refresh();
}

// Agent detail ------------------------------------------------------------------------

export function mountAgent(root, id, signal) {
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
    refresh.now();
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
  // Every load goes through `refresh`: one at a time, replies in order.
  refresh();
}

/** The score history as an SVG line chart: one marker per entry plus "now". */
export function scoreChart(history, trust, id = 'score-chart') {
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
    id, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`,
    class: 'chart', preserveAspectRatio: 'xMidYMid meet',
  },
  s('title', { id: `${id}-title` }, 'Trust score over time'),
  s('desc', { id: `${id}-desc` }, points.length
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
    h('figcaption', { class: 'hint' }, 'Each marker is an entry that moved the score, in order, evenly spaced (hover for its index, kind, score and time); the last is the score now.'));
}

function timeText(ms, long) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : (long ? timeFormat : shortTime).format(d);
}
