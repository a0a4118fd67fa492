// The live events, escalations, log health and entry views.

import { ApiError, agentPath, api, describe, isAbort, session } from './api.js';
import { POLL_MS, agentLink, dl, emptyState, entryLink, errorBox, every, fill, h, mono, ready, s, safeClass, timeEl, viewHeader } from './dom.js';
import { b64decode, indentJson, parseCheckpoint, toHex, verifyPanel } from './verify.js';
import { EVENTS_KEPT, EVENTS_REPLAYED } from './feed.js';
import { scoreChart } from './agents.js';

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

export function mountEvents(root, _arg, signal) {
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

export function mountEscalations(root, _arg, signal) {
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
    // The agent's score over time, as on its own page.
    const chart = h('div', { class: 'escalation-chart' }, h('p', { class: 'hint' }, 'Loading the score history…'));
    api(`/v1/console/agents/${agentPath(p.agent)}`, { signal }).then((d) => {
      chart.replaceChildren(scoreChart(Array.isArray(d.history) ? d.history : [], d.trust, `score-chart-${p.escalation}`));
    }).catch((e) => { if (!isAbort(e)) chart.replaceChildren(errorBox(e, 'The score history could not be read')); });
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
      h('details', { open: true }, h('summary', null, 'Score over time'), chart),
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

export function mountHealth(root, _arg, signal) {
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
      h('p', { class: 'hint' }, 'Sampled by the server once a second while it commits or is read (the latest 600 samples).')),
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

export function mountEntry(root, arg, signal) {
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
