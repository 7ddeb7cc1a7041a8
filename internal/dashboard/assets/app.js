// qfleet dashboard: polls status (a snapshot) and history (the samples this
// node recorded, one a second) and draws them. Hand-written and dependency
// free, so that the binary carries the whole page.
//
// After each drawing the page sets data attributes (data-points on the
// charts, data-member/data-roles/data-state on the member list, data-fill on
// the replay bar, data-lag on the runner rows, data-refreshes on <body>):
// they tell a person's tools, and the browser test, what was drawn.
'use strict';

const POLL_MS = 1000;
const TWO40 = 2 ** 40; // weights versions are term<<40 | count
const $ = (id) => document.getElementById(id);
const S = { samples: [], seq: 0, started: null, capacity: 7200, status: null, refreshes: 0 };

async function getJSON(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}

async function refresh() {
  try {
    const [st, h] = await Promise.all([getJSON('status'), getJSON('history?after=' + S.seq)]);
    if (h.started !== S.started) {
      // Another process answers (a restart on the same port): start over.
      const all = S.started === null ? h : await getJSON('history?after=0');
      S.started = h.started;
      S.samples = all.samples;
    } else {
      S.samples.push(...h.samples);
    }
    S.capacity = h.capacity;
    if (S.samples.length > S.capacity) S.samples.splice(0, S.samples.length - S.capacity);
    if (S.samples.length) S.seq = S.samples[S.samples.length - 1].seq;
    S.status = st;
    S.refreshes++;
    render();
    setConn('live', 'live');
  } catch (e) {
    setConn('offline', 'no answer: the run may have ended');
  }
  setTimeout(refresh, POLL_MS);
}

function setConn(state, text) {
  const c = $('conn');
  c.dataset.state = state;
  c.textContent = text;
}

// ---- formatting

const fmtInt = (v) => Math.round(v).toLocaleString('en-US');
function fmtCompact(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return +(v / 1e6).toFixed(2) + 'M';
  if (a >= 1e3) return +(v / 1e3).toFixed(1) + 'k';
  return +v.toFixed(a < 10 ? 2 : 1) + '';
}
function fmtDur(s) {
  s = Math.round(s);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? String(s % 60).padStart(2, '0') + 's' : '');
  const m = Math.floor(s / 60) % 60;
  return Math.floor(s / 3600) + 'h' + (m ? String(m).padStart(2, '0') + 'm' : '');
}
const fmtWeights = (v) => 't' + Math.floor(v / TWO40) + '/v' + (v % TWO40);
function fmtBytes(b) {
  if (b < 1e3) return Math.round(b) + ' B';
  if (b < 1e6) return (b / 1e3).toFixed(1) + ' kB';
  return (b / 1e6).toFixed(2) + ' MB';
}
// weightsLag is how far this node's runners' weights are behind the newest
// they heard of (the largest over its runners), in publications and seconds.
function weightsLag(st) {
  let pubs = 0, secs = 0, age = 0;
  for (const r of Object.values(st.runners || {})) {
    pubs = Math.max(pubs, r.weights_lag_publications || 0);
    secs = Math.max(secs, r.weights_lag_seconds || 0);
    age = Math.max(age, r.weights_age_seconds || 0);
  }
  return ` · ${pubs} behind, ${secs.toFixed(1)} s · taken ${age.toFixed(1)} s ago`;
}

// ---- charts

// niceStep is a round distance (1, 2, 5 × 10^k) for about n ticks over span.
function niceStep(span, n) {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}
// ticks are the multiples of step (default: a nice one for n) in [lo, hi].
function ticks(lo, hi, n, step) {
  step = step || niceStep(hi - lo, n);
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}
// timeTicks are about n round durations covering [lo, hi] seconds.
function timeTicks(lo, hi, n) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
  const step = steps.find((s) => (hi - lo) / s <= n) || 86400;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// chart draws series ({name, color, points: [[x, y], ...]}, x ascending) on
// canvas, with axes and optional dashed horizontal lines (opt.hlines).
function chart(canvas, series, opt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  const n = series.reduce((k, s) => k + s.points.length, 0);
  canvas.dataset.points = n;
  canvas._chart = null;
  if (n === 0) {
    ctx.fillStyle = color('--muted');
    ctx.textAlign = 'center';
    ctx.fillText(opt.empty || 'waiting for data…', w / 2, h / 2);
    return;
  }
  let x0 = opt.x0 ?? Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) for (const [x, y] of s.points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  for (const l of opt.hlines || []) { y0 = Math.min(y0, l.y); y1 = Math.max(y1, l.y); }
  if (opt.zero) y0 = Math.min(0, y0);
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  if (x1 - x0 < 1e-9) x1 = x0 + 1;
  // The y range ends on ticks, so a target at the top has room for its label.
  const ys = niceStep(y1 - y0, 4);
  y0 = Math.floor(y0 / ys + 1e-9) * ys;
  y1 = Math.ceil(y1 / ys - 1e-9) * ys;
  const yt = ticks(y0, y1, 4, ys);
  const L = 46, R = 10, T = 8, B = 20;
  const X = (x) => L + (x - x0) / (x1 - x0) * (w - L - R);
  const Y = (y) => h - B - (y - y0) / (y1 - y0) * (h - T - B);

  ctx.strokeStyle = color('--line');
  ctx.fillStyle = color('--muted');
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of yt) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(w - R, y); ctx.stroke();
    ctx.fillText(fmtCompact(v), L - 6, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const xt = opt.time ? timeTicks(x0, x1, 6) : ticks(x0, x1, 6);
  for (const v of xt) ctx.fillText(opt.time ? fmtDur(v) : fmtCompact(v), X(v), h - B + 5);

  for (const l of opt.hlines || []) {
    ctx.strokeStyle = l.color;
    ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(L, Y(l.y)); ctx.lineTo(w - R, Y(l.y)); ctx.stroke();
    ctx.setLineDash([]);
    if (l.label) {
      ctx.fillStyle = l.color;
      ctx.textAlign = 'left';
      const above = Y(l.y) - T > 14;
      ctx.textBaseline = above ? 'bottom' : 'top';
      ctx.fillText(l.label, L + 4, Y(l.y) + (above ? -2 : 3));
    }
  }
  ctx.lineWidth = 1.8;
  ctx.lineJoin = 'round';
  for (const s of series) {
    if (!s.points.length) continue;
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
  }
  canvas._chart = { series, opt, L, R, x0, x1 };
}

// A readout of the values under the pointer: charts are read, not just seen.
function nearest(points, x) {
  let lo = 0, hi = points.length - 1;
  if (hi < 0) return null;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < x) lo = mid + 1; else hi = mid;
  }
  if (lo > 0 && x - points[lo - 1][0] < points[lo][0] - x) lo--;
  return points[lo];
}
function attachTip(canvas) {
  const tip = $('tip');
  canvas.addEventListener('mousemove', (e) => {
    const c = canvas._chart;
    if (!c) { tip.hidden = true; return; }
    const r = canvas.getBoundingClientRect();
    const x = c.x0 + (e.clientX - r.left - c.L) / (r.width - c.L - c.R) * (c.x1 - c.x0);
    const lines = [];
    for (const s of c.series) {
      const p = nearest(s.points, x);
      if (!p) continue;
      if (!lines.length) lines.push((c.opt.time ? fmtDur(p[0]) : fmtInt(p[0]) + ' steps'));
      lines.push(s.name + ': ' + (Math.abs(p[1]) >= 100 ? fmtInt(p[1]) : p[1].toFixed(1)));
    }
    tip.textContent = lines.join('\n');
    tip.hidden = !lines.length;
    tip.style.left = (e.clientX + 14) + 'px';
    tip.style.top = (e.clientY + 14) + 'px';
  });
  canvas.addEventListener('mouseleave', () => { tip.hidden = true; });
}

// smooth is the mean of each value and the k−1 defined ones before it: one
// second's rate jumps with the runners' report batches.
function smooth(samples, key, xkey, k) {
  const out = [], win = [];
  for (const s of samples) {
    if (s[key] == null) continue;
    win.push(s[key]);
    if (win.length > k) win.shift();
    out.push([s[xkey], win.reduce((a, b) => a + b, 0) / win.length]);
  }
  return out;
}

// ---- the page

function render() {
  const st = S.status, run = st.run || {}, smp = S.samples;
  const last = smp.length ? smp[smp.length - 1] : null;
  const c = st.counters;
  const learnerHere = st.roles.includes('learner');
  // A node with runners and no learner shows its own runners' counts,
  // returns and weights: the run's stats are kept on the learner's node.
  const runnersOnly = !learnerHere && st.roles.includes('runner');

  $('node').textContent = st.node;
  $('run').textContent = `${run.env} · seed ${run.seed} · ${st.roles.join(', ')}`;
  $('solved').hidden = !st.solved;
  document.title = `qfleet ${st.node} · ${run.env} · ${st.mean_return_100_episodes ? st.mean_return_100.toFixed(1) : '–'}`;

  const steps = last ? last.steps : c.env_steps;
  $('t-steps').textContent = fmtInt(steps);
  $('t-steps-sub').textContent = run.max_steps ? `of ${fmtInt(run.max_steps)} (${(100 * steps / run.max_steps).toFixed(1)}%)` : '';
  $('t-mean').textContent = st.mean_return_100_episodes ? st.mean_return_100.toFixed(1) : '–';
  $('t-mean-sub').textContent = (run.target_return != null ? `target ${run.target_return}` : '') +
    (st.mean_return_100_episodes ? ` · over ${st.mean_return_100_episodes} episodes` : '');
  $('t-mean-all').textContent = c.episodes ? st.mean_return_100_all.toFixed(1) : '–';
  $('t-episodes').textContent = fmtInt(c.episodes) + ' episodes';
  $('t-updates').textContent = learnerHere ? fmtInt(c.learner_updates) : '–';
  $('t-weights').textContent = 'weights ' + fmtWeights(st.weights_version) + (runnersOnly ? weightsLag(st) : '');
  const r5 = (key) => { const p = smooth(smp.slice(-5), key, 'wall', 5); return p.length ? p[p.length - 1][1] : null; };
  const sps = r5('env_steps_per_s'), ups = r5('updates_per_s');
  $('t-rate').textContent = sps == null ? '–' : fmtInt(sps) + ' steps/s';
  $('t-rate-sub').textContent = ups == null ? '' : fmtInt(ups) + ' updates/s';
  const out = r5('link_out_per_s'), inn = r5('link_in_per_s');
  $('t-link').textContent = out == null ? '–' : '↑ ' + fmtBytes(out) + '/s';
  $('t-link-sub').textContent = inn == null ? '' : '↓ ' + fmtBytes(inn) + '/s' + (runnersOnly ? ' (↑ experience, ↓ weights)' : '');
  // The last evaluation (mean ± std at its env steps) and the best, whose
  // weights the learner keeps as best.ckpt.
  const le = st.last_eval, be = st.best_eval;
  $('t-eval').textContent = le ? `${le.mean_return.toFixed(1)} ± ${le.std_return.toFixed(1)}` : '–';
  $('t-eval-sub').textContent = (le ? `at ${fmtInt(le.env_steps)} steps` : 'no evaluation yet') +
    (be ? ` · best ${be.mean_return.toFixed(1)} at ${fmtInt(be.env_steps)} (${fmtWeights(be.weights_version)})` : '');
  $('t-uptime').textContent = fmtDur(st.uptime_seconds);
  $('t-roles').textContent = `${st.members.length} member(s)`;

  const noStats = learnerHere || runnersOnly ? undefined : 'the run\u2019s stats are kept on the learner\u2019s node';
  const curve = (xkey) => [
    { name: 'mean100', color: color('--c1'), points: smp.filter((s) => s.mean100 != null).map((s) => [s[xkey], s.mean100]) },
    { name: 'all runners', color: color('--c2'), points: smp.filter((s) => s.mean100_all != null).map((s) => [s[xkey], s.mean100_all]) },
  ];
  const hlines = run.target_return != null ? [{ y: run.target_return, color: color('--ct'), label: 'target ' + run.target_return }] : [];
  // mean100_all first, so that mean100 is drawn over it.
  // The x axes start at 0: the time before the first episode is part of the story.
  chart($('curve-steps'), curve('steps').reverse(), { hlines, x0: 0, empty: noStats });
  chart($('curve-time'), curve('wall').reverse(), { hlines, x0: 0, time: true, empty: noStats });
  chart($('throughput'), [
    { name: 'env steps/s', color: color('--c3'), points: smooth(smp, 'env_steps_per_s', 'wall', 5) },
    { name: 'updates/s', color: color('--c4'), points: smooth(smp, 'updates_per_s', 'wall', 5) },
  ], { time: true, zero: true, x0: 0 });

  renderReplay(st, run);
  renderRunners(st);
  $('runners-caption').textContent = runnersOnly
    ? 'this node\u2019s runners; weights lag: publications behind the newest they heard of'
    : 'weights lag: publications behind the learner';
  renderMembers(st);
  renderHealth(st);
  document.body.dataset.refreshes = S.refreshes;
}

function renderReplay(st, run) {
  const fill = $('replay-fill'), text = $('replay-text');
  if (!st.roles.includes('replay')) {
    fill.style.width = '0';
    fill.dataset.fill = '';
    text.textContent = 'The replay runs on another node: see its dashboard.';
    return;
  }
  const size = st.counters.replay_size, cap = run.replay_capacity || 0;
  const f = cap ? Math.min(1, size / cap) : 0;
  fill.style.width = (100 * f).toFixed(2) + '%';
  fill.dataset.fill = f.toFixed(4);
  text.textContent = `${fmtInt(size)} of ${fmtInt(cap)} transitions (${(100 * f).toFixed(1)}%) · ${fmtInt(st.counters.replay_inserted)} inserted`;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}

function renderRunners(st) {
  const names = Object.keys(st.runners || {}).sort();
  const lags = st.weights_lag || {};
  // The bars compare the runners: the one furthest behind has the longest.
  const maxLag = Math.max(1, ...Object.values(lags));
  $('runners').replaceChildren(...names.map((n) => {
    const r = st.runners[n], lag = lags[n];
    const bar = el('div', { class: 'bar' }, el('div', { class: 'fill' }));
    bar.hidden = names.length < 2;
    bar.firstChild.style.width = lag == null ? '0' : (100 * lag / maxLag).toFixed(1) + '%';
    const age = r.last_report ? (Date.now() - Date.parse(r.last_report)) / 1000 : null;
    return el('tr', { 'data-runner': n, 'data-lag': lag == null ? '' : lag },
      el('td', { title: age == null ? '' : `last report ${fmtDur(Math.max(0, age))} ago` }, n),
      el('td', {}, fmtInt(r.env_steps)),
      // ε now, and the Ape-X ladder rung it decays to (when there is a ladder).
      el('td', { title: r.ladder_count > 1 ? `rung ${r.ladder_index + 1} of ${r.ladder_count}: decays to ε ${r.ladder_epsilon.toPrecision(3)}` : '' },
        r.epsilon.toFixed(3) + (r.ladder_count > 1 ? ` · ${r.ladder_index + 1}/${r.ladder_count}` : '')),
      el('td', {}, fmtWeights(r.weights_version)),
      el('td', { title: lag == null ? 'another learner term: does not compare' : '' },
        el('div', { class: 'lag' }, el('span', {}, lag == null ? '–' : String(lag)), bar)));
  }));
  $('runners-empty').hidden = names.length > 0;
}

function renderMembers(st) {
  const ms = st.member_info || st.members.map((name) => ({ name, roles: [], state: 'alive' }));
  $('members').replaceChildren(...ms.map((m) => el('li',
    { 'data-member': m.name, 'data-roles': m.roles.join(','), 'data-state': m.state },
    el('span', { class: 'dot ' + m.state }),
    el('span', { class: 'name' }, m.name + (m.self ? ' (this node)' : '')),
    el('span', { class: 'state muted' }, m.state + (m.state_seconds ? ' for ' + fmtDur(m.state_seconds) : '')),
    el('div', { class: 'roles' }, ...m.roles.map((r) => el('span', { class: 'role' }, r))))));
}

function renderHealth(st) {
  const c = st.counters, rows = [];
  const restarts = Object.entries(st.restarts || {}).filter(([, n]) => n > 0);
  rows.push(['role restarts', restarts.length ? restarts.map(([r, n]) => `${r} ×${n}`).join(', ') : 'none']);
  const stopped = st.stopped_roles || [];
  rows.push(['stopped roles', stopped.length ? stopped.join(', ') : 'none', stopped.length > 0]);
  // Only the counts of this node's roles are in its status.
  if (c.experience_sent != null) rows.push(['experience sent', fmtInt(c.experience_sent)]);
  if (c.replay_inserted != null) rows.push(['inserted into replay', fmtInt(c.replay_inserted)]);
  if (c.experience_dropped != null) rows.push(['dropped (full outboxes)', fmtInt(c.experience_dropped)]);
  if (c.experience_lost != null) rows.push(['lost in transit', fmtInt(c.experience_lost), c.experience_lost > 0]);
  if (c.experience_rejected != null) rows.push(['rejected as malformed', fmtInt(c.experience_rejected), c.experience_rejected > 0]);
  $('health').replaceChildren(...rows.map(([k, v, bad]) =>
    el('tr', {}, el('td', {}, k), el('td', bad ? { class: 'bad' } : {}, v))));
}

for (const id of ['curve-steps', 'curve-time', 'throughput']) attachTip($(id));
window.addEventListener('resize', () => { if (S.status) render(); });
refresh();
