// swr dashboard. Plain JavaScript, no build step, served from the binary.
// State comes from one SSE stream (/api/events): every store change sends a snapshot of the
// runners and the queue, and the page redraws from it. A runner's log is a second stream.
// Text is always set with textContent, never parsed as HTML.
'use strict';

const $ = (sel, el = document) => el.querySelector(sel);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const S = {
  runners: [],
  queue: { paused: false, entries: [] },
  problems: [],
  projects: [],
  selected: null,       // runner id whose log is shown
  logSource: null,
  clockSkew: 0,         // server now - local now, ms
};

// ---- helpers ----

function toast(msg, isError) {
  const t = $('#toast');
  t.textContent = msg;
  t.className = 'toast' + (isError ? ' error' : '');
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 2500);
}

async function api(method, url, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  let j = null;
  try { j = await r.json(); } catch (_) { /* an empty body */ }
  if (!r.ok) throw new Error((j && j.error) || ('HTTP ' + r.status));
  return j;
}

function baseName(p) { const parts = String(p).split('/').filter(Boolean); return parts[parts.length - 1] || p; }

function human(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd' + String(Math.floor((s % 86400) / 3600)).padStart(2, '0') + 'h';
}

function serverNow() { return Date.now() + S.clockSkew; }

function bar(done, doing, total) {
  const pct = (n) => total > 0 ? (100 * n / total).toFixed(1) + '%' : '0%';
  return h('div', { class: 'progress' },
    h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': done },
      h('div', { class: 'done', style: 'width:' + pct(done) }),
      h('div', { class: 'doing', style: 'width:' + pct(doing) })),
    h('span', { class: 'frac' }, done + '/' + total));
}

function badge(status) { return h('span', { class: 'badge st-' + status }, status); }

// ---- runners ----

function countdownText(r) {
  if (!r.next_attempt_at || !['running', 'waiting', 'queued'].includes(r.status)) return null;
  const left = Date.parse(r.next_attempt_at) - serverNow();
  const what = r.status === 'waiting' && r.last_outcome === 'rate_limited' ? 'rate limit ends' : 'next attempt';
  return left > 0 ? what + ' in ' + human(left) : what + ' now';
}

function renderRunners() {
  const box = $('#runners');
  box.replaceChildren();
  const list = S.runners.slice().sort((a, b) =>
    (b.alive === true) - (a.alive === true) || String(b.started_at).localeCompare(String(a.started_at)));
  if (!list.length) { box.append(h('p', { class: 'empty' }, 'No runners yet. Queue a spec below.')); return; }
  for (const r of list) {
    const active = ['running', 'waiting', 'queued'].includes(r.status);
    const t = r.tasks || { done: 0, in_progress: 0, total: 0 };
    const cd = countdownText(r);
    const card = h('div', {
      class: 'runner' + (S.selected === r.runner_id ? ' selected' : ''),
      dataset: { id: r.runner_id, spec: r.spec, status: r.status },
    },
      h('div', { class: 'head' }, badge(r.status), h('span', { class: 'spec' }, r.spec),
        h('span', { class: 'dim' }, baseName(r.project)),
        h('span', { class: 'dim' }, r.provider + (r.model ? '/' + r.model : ''))),
      bar(t.done, t.in_progress, t.total),
      h('div', { class: 'meta' },
        h('span', { class: 'retry' }, 'Retry: ' + r.retry_count + '/' + r.max_retries),
        h('span', {}, 'iteration ' + r.iteration),
        cd && h('span', { class: 'countdown', dataset: { runner: r.runner_id } }, cd),
        r.last_outcome && h('span', {}, 'last: ', h('b', {}, r.last_outcome)),
        (r.cost_usd !== null && r.cost_usd !== undefined) && h('span', {}, '$' + Number(r.cost_usd).toFixed(2))),
      r.reason && h('div', { class: 'reason' }, r.reason.split('\n')[0]),
      r.alive === false && h('div', { class: 'warn' }, 'its swr process is gone (marked crashed at the next check)'),
      (r.webhook_failures || []).map((w) => h('div', { class: 'warn' },
        'webhook ' + w.url + ' (' + w.event + ') ' + (w.state === 'failed' ? 'failed after ' + w.tries + ' tries' : 'failed, retried later') +
        (w.error ? ': ' + w.error : ''))),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'log-btn', onclick: () => selectRunner(r.runner_id) }, 'Log'),
        active && h('button', { type: 'button', class: 'stop danger', onclick: () => stopRunner(r) }, 'Stop')));
    box.append(card);
  }
}

function tickCountdowns() {
  for (const el of document.querySelectorAll('.countdown')) {
    const r = S.runners.find((x) => x.runner_id === el.dataset.runner);
    const t = r && countdownText(r);
    if (t) el.textContent = t;
  }
}

async function stopRunner(r) {
  try {
    await api('POST', '/api/runners/' + encodeURIComponent(r.runner_id) + '/stop');
    toast('stopping ' + r.spec + '…');
  } catch (e) { toast(String(e.message || e), true); }
}

// ---- log ----

function logLine(cls, text) {
  const pre = $('#log');
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 30;
  pre.append(h('span', { class: cls }, text + '\n'));
  while (pre.childNodes.length > 3000) pre.removeChild(pre.firstChild);
  if ($('#follow').checked && atEnd) pre.scrollTop = pre.scrollHeight;
}

function selectRunner(id) {
  if (S.logSource) S.logSource.close();
  S.selected = id;
  const r = S.runners.find((x) => x.runner_id === id);
  $('#log-title').textContent = r ? r.spec + ' · ' + id : id;
  const pre = $('#log');
  pre.replaceChildren();
  const es = new EventSource('/api/runners/' + encodeURIComponent(id) + '/log');
  S.logSource = es;
  es.addEventListener('attempt', (e) => {
    const a = JSON.parse(e.data);
    logLine('sep', '── attempt log ' + baseName(a.path) + ' (iteration ' + a.iteration + ', Retry: ' + a.retry_count + ') ──');
  });
  es.addEventListener('lines', (e) => {
    const raw = $('#raw').checked;
    for (const l of JSON.parse(e.data)) {
      if (raw) logLine('raw', l.raw);
      else for (const p of l.pretty) logLine(p.kind, p.text);
    }
  });
  es.addEventListener('end', (e) => {
    const end = JSON.parse(e.data);
    logLine('sep', '── runner ended: ' + end.status + (end.reason ? ' (' + end.reason + ')' : '') + ' ──');
    es.close();
  });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) logLine('error', '(log stream closed)'); };
  renderRunners();
  if (window.matchMedia('(max-width: 820px)').matches) $('#log-section').scrollIntoView({ behavior: 'smooth' });
}

// ---- queue ----

function renderQueue() {
  const q = S.queue;
  $('#pause').textContent = q.paused ? 'Resume queue' : 'Pause queue';
  $('#queue-state').textContent = q.paused ? '(paused: nothing new starts)' : '';
  const box = $('#queue');
  box.replaceChildren();
  if (!q.entries.length) { box.append(h('p', { class: 'empty' }, 'The queue is empty.')); return; }
  for (const e of q.entries) {
    const status = e.state === 'done' ? (e.result || 'done') : e.state;
    box.append(h('div', { class: 'qentry', dataset: { id: e.id, state: e.state } },
      h('span', { class: 'id' }, '#' + e.id), badge(status),
      h('b', {}, e.spec), h('span', { class: 'dim' }, baseName(e.project)),
      h('span', { class: 'dim' }, 'priority ' + e.priority + (e.provider ? ' · ' + e.provider : '')),
      e.restarts > 0 && h('span', { class: 'dim' }, 'restarted ' + e.restarts + '×'),
      e.state !== 'running' && h('button', { type: 'button', class: 'rm', onclick: () => removeEntry(e) }, 'Remove'),
      e.note && h('div', { class: 'note' }, e.note)));
  }
}

async function removeEntry(e) {
  try { await api('DELETE', '/api/queue/' + e.id); } catch (err) { toast(String(err.message || err), true); }
}

async function queueSpec(project, spec, priority, provider) {
  try {
    const body = { project, spec, priority };
    if (provider) body.provider = provider;
    const e = await api('POST', '/api/queue', body);
    toast('queued ' + e.spec + ' as #' + e.id);
  } catch (err) { toast(String(err.message || err), true); }
}

function fillForm() {
  const ps = $('#q-project');
  const keep = ps.value;
  ps.replaceChildren(...S.projects.map((p) => h('option', { value: p.path }, p.name)));
  if (keep && S.projects.some((p) => p.path === keep)) ps.value = keep;
  fillSpecs();
}

function fillSpecs() {
  const p = S.projects.find((x) => x.path === $('#q-project').value);
  const ss = $('#q-spec');
  ss.replaceChildren(...(p ? p.specs : []).map((s) => h('option', { value: s.spec }, s.spec)));
}

// ---- projects ----

function liveCounts(projectPath, spec, row) {
  const r = S.runners.find((x) => x.project === projectPath && x.spec === spec);
  return r ? r.tasks : { done: row.done, in_progress: row.in_progress, total: row.total };
}

function renderProjects() {
  const f = $('#filter').value.trim().toLowerCase();
  const box = $('#projects');
  box.replaceChildren();
  const shown = S.projects.filter((p) => !f || p.name.toLowerCase().includes(f) || p.specs.some((s) => s.spec.toLowerCase().includes(f)));
  $('#projects-count').textContent = S.projects.length ? '(' + S.projects.length + ')' : '';
  const LIMIT = 60;
  for (const p of shown.slice(0, LIMIT)) {
    const specs = p.specs.filter((s) => !f || p.name.toLowerCase().includes(f) || s.spec.toLowerCase().includes(f));
    box.append(h('div', { class: 'project', dataset: { path: p.path } },
      h('div', { class: 'pname' }, p.name), h('div', { class: 'ppath' }, p.path),
      specs.length ? specs.map((s) => {
        const c = liveCounts(p.path, s.spec, s);
        return h('div', { class: 'spec-row', dataset: { spec: s.spec } },
          h('span', { class: 'sname', title: s.spec }, s.spec),
          bar(c.done, c.in_progress, c.total),
          h('span', { class: 'btns' },
            h('button', { type: 'button', class: 'start', title: 'queue first: starts as soon as a slot is free', onclick: () => queueSpec(p.path, s.spec, 1000) }, 'Start'),
            h('button', { type: 'button', class: 'enqueue', title: 'add to the end of the queue', onclick: () => queueSpec(p.path, s.spec, 0) }, 'Queue')));
      }) : h('p', { class: 'empty' }, 'no specs yet')));
  }
  if (shown.length > LIMIT) box.append(h('p', { class: 'more' }, (shown.length - LIMIT) + ' more: filter to find them'));
  if (!shown.length) box.append(h('p', { class: 'empty' }, S.projects.length ? 'nothing matches' : 'No projects under repos_root.'));
}

async function loadProjects() {
  try {
    const v = await api('GET', '/api/projects');
    S.projects = v.projects || [];
    renderProjects();
    fillForm();
  } catch (e) { toast('projects: ' + (e.message || e), true); }
}

// ---- retry dashboard ----

const GOOD = { success: 'o-success', running: 'o-running', rate_limited: 'o-rate_limited', stopped: 'o-stopped', no_progress: 'o-no_progress' };

async function loadDashboard() {
  try {
    const [st, attempts] = await Promise.all([api('GET', '/api/stats'), api('GET', '/api/attempts?limit=400')]);
    const pct = (v) => (v === null || v === undefined) ? 'n/a' : (100 * v).toFixed(1) + ' %';
    $('#dash-stats').replaceChildren(
      h('span', {}, 'retry success rate ', h('b', {}, pct(st.retry_success_rate)), ' (' + st.retried_then_succeeded + '/' + st.iterations_needing_retry + ')'),
      h('span', {}, 'final failure rate ', h('b', {}, pct(st.final_failure_rate)), ' (' + st.iterations_out_of_retries + '/' + st.iterations + ')'),
      h('span', {}, 'average backoff ', h('b', {}, st.average_backoff_ms == null ? 'n/a' : (st.average_backoff_ms / 1000).toFixed(1) + 's')),
      h('span', {}, attempts.length + ' attempt(s)'));
    const box = $('#dashboard');
    box.replaceChildren();
    const ids = [];
    for (const a of attempts.slice().reverse()) if (!ids.includes(a.runner_id)) ids.push(a.runner_id);
    for (const id of ids.slice(0, 30)) {
      const mine = attempts.filter((a) => a.runner_id === id);
      const r = S.runners.find((x) => x.runner_id === id);
      box.append(h('div', { class: 'rh' }, h('b', {}, mine[0].spec), ' ', h('span', { class: 'dim' }, id), ' ',
        r ? badge(r.status) : null, r ? ' Retry: ' + r.retry_count + '/' + r.max_retries : ''));
      const iters = [...new Set(mine.map((a) => a.iteration))].slice(-6);
      for (const it of iters) {
        const line = h('div', { class: 'it' }, h('span', { class: 'dim' }, '  it ' + String(it).padEnd(3)));
        for (const a of mine.filter((x) => x.iteration === it)) {
          const o = a.outcome || (a.ended_at ? 'unknown' : 'running');
          const dur = a.ended_at ? ' ' + ((Date.parse(a.ended_at) - Date.parse(a.started_at)) / 1000).toFixed(1) + 's' : '';
          line.append(h('span', { class: GOOD[o] || 'o-bad' }, o + dur));
          if (a.delay_before_next_ms != null) line.append(h('span', { class: 'dim' }, ' ─' + (a.delay_before_next_ms / 1000).toFixed(1) + 's→ '));
          else line.append(' ');
        }
        box.append(line);
      }
    }
    if (!ids.length) box.append(h('p', { class: 'empty' }, 'No attempt recorded yet.'));
  } catch (e) { /* the next state event retries */ }
}

// At most one dashboard reload a second, however fast the store changes.
function scheduleDashboard() {
  if (scheduleDashboard.pending) return;
  const wait = Math.max(0, 1000 - (Date.now() - (scheduleDashboard.last || 0)));
  scheduleDashboard.pending = setTimeout(() => {
    scheduleDashboard.pending = null;
    scheduleDashboard.last = Date.now();
    loadDashboard();
  }, wait);
}

// ---- live state ----

function applyState(s) {
  if (s.now) S.clockSkew = Date.parse(s.now) - Date.now();
  const before = new Map(S.runners.map((r) => [r.runner_id, r.status]));
  S.runners = s.runners || [];
  S.queue = s.queue || { paused: false, entries: [] };
  S.problems = s.webhook_problems || [];
  const active = S.runners.filter((r) => ['running', 'waiting', 'queued'].includes(r.status)).length;
  const queued = S.queue.entries.filter((e) => e.state === 'queued').length;
  $('#summary').textContent = active + ' active runner(s) · ' + queued + ' queued' +
    (S.problems.length ? ' · ' + S.problems.length + ' webhook problem(s)' : '');
  // Redraw only what changed: a click never lands on a card that is being replaced for nothing.
  const rk = JSON.stringify(S.runners);
  if (rk !== applyState.runnersKey) { applyState.runnersKey = rk; renderRunners(); }
  const qk = JSON.stringify(S.queue);
  if (qk !== applyState.queueKey) { applyState.queueKey = qk; renderQueue(); }
  scheduleDashboard();
  // A runner that ended changed its spec's tasks.md for good: reread the projects.
  const ended = S.runners.some((r) => before.has(r.runner_id) && before.get(r.runner_id) !== r.status);
  const tk = JSON.stringify(S.runners.map((r) => [r.project, r.spec, r.tasks]));
  if (ended || before.size !== S.runners.length) loadProjects();
  else if (tk !== applyState.tasksKey) renderProjects();
  applyState.tasksKey = tk;
}

function connect() {
  const es = new EventSource('/api/events');
  const conn = $('#conn');
  es.addEventListener('state', (e) => { applyState(JSON.parse(e.data)); });
  es.onopen = () => { conn.textContent = 'live'; conn.className = 'conn live'; };
  es.onerror = () => { conn.textContent = 'reconnecting…'; conn.className = 'conn down'; };
}

$('#pause').addEventListener('click', async () => {
  try { await api('POST', S.queue.paused ? '/api/queue/resume' : '/api/queue/pause'); } catch (e) { toast(String(e.message || e), true); }
});
$('#q-project').addEventListener('change', fillSpecs);
$('#queue-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const prio = parseInt($('#q-priority').value || '0', 10);
  queueSpec($('#q-project').value, $('#q-spec').value, Number.isFinite(prio) ? prio : 0, $('#q-provider').value.trim());
});
$('#filter').addEventListener('input', renderProjects);
$('#raw').addEventListener('change', () => { if (S.selected) selectRunner(S.selected); });
// A rotated phone resizes the log: keep following its end.
window.addEventListener('resize', () => { if ($('#follow').checked) { const l = $('#log'); l.scrollTop = l.scrollHeight; } });
setInterval(tickCountdowns, 1000);
loadProjects();
connect();
