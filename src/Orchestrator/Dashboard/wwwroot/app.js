// sweep dashboard: a sweeps list, one sweep's trials, live curves over server-sent events, logs and the report.
// Every piece of data (sweep and trial names come from specs) goes into the page through textContent or
// attributes set from code, never through innerHTML.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const api = (path) => fetch(path, { headers: { Accept: 'application/json' } });
  const sweepPath = (id) => '/api/sweeps/' + encodeURIComponent(id);

  let selected = null;       // the selected sweep's id
  let source = null;         // its EventSource
  let charts = null;         // { accuracy, loss, byTrial: Map(trialId -> dataset index) }
  let statusTimer = null;
  let updatePending = false;
  let lastStatus = null;     // the selected sweep's last status
  let scatter = null;        // the final-accuracy-against-a-parameter chart
  let scatterKey = null;     // its axis (parameter, scale, categories): a refresh on the same axis only updates its points
  let scatterCharts = 0;     // how many scatter charts were created (for tests: a refresh does not make another)
  const hidden = new Set();  // trial ids whose curves are left out
  let parallelLines = 0;     // lines drawn on the parallel coordinates (for tests)
  let allRows = false;       // show every trial's row, however many
  const MAX_ROWS = 100;      // beyond this, the table shows the running trials, then the best

  // A curve's dash pattern by its index, so that identical curves (same numbers, one over the other) stay visible.
  const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function fmt(value, digits) {
    return typeof value === 'number' && isFinite(value) ? value.toFixed(digits) : '-';
  }

  // ---- the sweeps list ----
  async function loadSweeps() {
    try {
      const response = await api('/api/sweeps');
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const sweeps = await response.json();
      const list = $('sweeps');
      list.replaceChildren();
      for (const s of sweeps) {
        const button = el('button', s.sweepId);
        button.dataset.sweepId = s.sweepId;
        if (s.sweepId === selected) button.classList.add('selected');
        const phase = s.ownerGone ? 'interrupted (no process owns it)' : s.state.toLowerCase();
        button.appendChild(el('span', s.name + ' · ' + phase + ' · ' + s.finished + '/' + s.trials + ' finished', 'state'));
        button.addEventListener('click', () => select(s.sweepId));
        const item = el('li');
        item.appendChild(button);
        list.appendChild(item);
      }
      $('no-sweeps').hidden = sweeps.length > 0;
      $('connection').textContent = '';
    } catch (e) {
      $('connection').textContent = 'cannot reach the server (' + e.message + ')';
    }
  }

  // ---- one sweep ----
  async function select(id) {
    selected = id;
    hidden.clear();
    allRows = false;
    // A link to the sweep: the address bar holds it, so it can be bookmarked and shared.
    if (decodeURIComponent(location.hash.replace(/^#sweep=/, '')) !== id) history.replaceState(null, '', '#sweep=' + encodeURIComponent(id));
    if (source) { source.close(); source = null; }
    for (const b of document.querySelectorAll('#sweeps button')) b.classList.toggle('selected', b.dataset.sweepId === id);
    $('sweep').hidden = false;
    $('logs').hidden = true;
    $('report').hidden = true;
    const status = await loadStatus();
    if (!status || selected !== id) return;
    makeCharts(status.trials);
    follow(id);
  }

  async function loadStatus() {
    const id = selected;
    const response = await api(sweepPath(id));
    if (!response.ok || id !== selected) return null;
    const status = await response.json();
    renderStatus(status);
    if (status.state === 'Completed') loadReport(id);
    return status;
  }

  function scheduleStatus() {
    if (statusTimer) return;
    statusTimer = setTimeout(() => { statusTimer = null; loadStatus(); }, 1000);
  }

  function renderStatus(status) {
    lastStatus = status;
    $('sweep-title').textContent = status.sweepId + ' (' + status.name + ')';
    renderBest(status);
    renderEta(status);
    renderComparisons(status);
    applyVisibility();
    const counts = {};
    for (const t of status.trials) counts[t.state] = (counts[t.state] || 0) + 1;
    // A sweep the journal shows as running whose process is gone is interrupted in fact: say so, and how to go on.
    $('owner').hidden = !status.ownerGone;
    $('owner').textContent = status.ownerGone ? status.owner : '';
    $('sweep-summary').textContent = (status.ownerGone ? 'interrupted (no process owns it)' : status.state.toLowerCase()) + '; ' +
      Object.entries(counts).map(([k, v]) => v + ' ' + k.toLowerCase()).join(', ') +
      '; started ' + new Date(status.startedAt).toLocaleString();
    const body = document.querySelector('#trials tbody');
    body.replaceChildren();
    for (const t of rowsToShow(status.trials)) {
      const row = el('tr', null, t.state);
      row.dataset.trial = t.name;
      row.dataset.trialId = t.id;
      const note = t.state === 'Diverged' ? 'diverged at ' + t.divergedAtIteration + ': ' + (t.divergenceReason || '')
        : t.state === 'Stopped' ? 'stopped early at ' + t.stoppedAtIteration + ': ' + (t.stopReason || '')
        : t.state === 'Failed' ? (t.error || '') : t.error ? 'last error: ' + t.error : '';
      const accuracy = t.finalTestAccuracy ?? t.bestTestAccuracy;
      const cells = [t.name, t.batchSize, t.baseLr, t.state, t.attempts, t.iteration + '/' + t.maxIter,
        fmt(accuracy, 4), fmt(t.secondsPer100Iterations, 2),
        t.peakMemoryBytes > 0 ? (t.peakMemoryBytes / 1048576).toFixed(0) : '-', note];
      for (const c of cells) row.appendChild(el('td', c));
      // A tick in the name's cell picks the trial's curves (the cell's text stays the name).
      const pick = el('input');
      pick.type = 'checkbox';
      pick.checked = !hidden.has(t.id);
      pick.title = 'show its curves';
      pick.addEventListener('click', (e) => { e.stopPropagation(); if (pick.checked) hidden.delete(t.id); else hidden.add(t.id); applyVisibility(); });
      row.firstChild.prepend(pick);
      row.addEventListener('click', () => loadLogs(t.name));
      body.appendChild(row);
    }
    renderSlots(status);
  }

  // Every slot's self-test verdict: an unhealthy slot takes no trials, and says why.
  function renderSlots(status) {
    const slots = status.slots || [];
    $('slots-box').hidden = slots.length === 0 && !status.interruptReason;
    $('halted').hidden = !status.interruptReason;
    $('halted').textContent = status.interruptReason ? 'Halted: ' + status.interruptReason : '';
    const body = document.querySelector('#slots tbody');
    body.replaceChildren();
    for (const s of slots) {
      const row = el('tr', null, s.healthy ? 'healthy' : 'unhealthy');
      for (const c of [s.workerId, s.device, s.threads, s.healthy ? 'yes' : 'NO', s.selfTest]) row.appendChild(el('td', c));
      body.appendChild(row);
    }
  }

  // A long sweep's table is never an unbounded list: the running trials, then the best by test accuracy,
  // MAX_ROWS in all, in spec order; the note says how many more there are and where they all are.
  function rowsToShow(trials) {
    const note = $('rows-note');
    if (allRows || trials.length <= MAX_ROWS) { note.hidden = true; return trials; }
    const rank = (t) => t.state === 'Running' ? 2 : typeof t.bestTestAccuracy === 'number' ? 1 + t.bestTestAccuracy / 10 : 0;
    const chosen = new Set(trials.map((t, i) => ({ t, i })).sort((a, b) => rank(b.t) - rank(a.t) || a.i - b.i).slice(0, MAX_ROWS).map((x) => x.t.id));
    note.hidden = false;
    note.firstChild.textContent = 'Showing ' + MAX_ROWS + ' of ' + trials.length + ' trials (the running ones, then the best by test accuracy); every one is in `sweep status --json` and the report\'s trials.csv.';
    return trials.filter((t) => chosen.has(t.id));
  }

  // ---- the best trial, and when the sweep will end ----
  const parameterText = (t) => ['batch ' + t.batchSize, 'lr ' + t.baseLr]
    .concat(Object.entries(t.parameters || {}).map(([k, v]) => k + ' ' + v)).join(', ');

  function renderBest(status) {
    const done = status.trials.filter((t) => t.state === 'Completed' && typeof t.finalTestAccuracy === 'number')
      .sort((a, b) => b.finalTestAccuracy - a.finalTestAccuracy);
    if (done.length === 0) { $('best').textContent = 'No completed trial yet.'; return; }
    const [best, second] = done;
    $('best').textContent = 'Best: ' + best.name + ', test accuracy ' + best.finalTestAccuracy.toFixed(4) + ' (' + parameterText(best) + ')' +
      (second ? '; ' + (100 * (best.finalTestAccuracy - second.finalTestAccuracy)).toFixed(2) + ' points ahead of ' + second.name : '; the only completed trial');
  }

  // The time left: every unfinished trial's remaining iterations at its own measured seconds per iteration
  // (the sweep's mean for a trial not yet timed), shared by the slots that take trials.
  function etaSeconds(status) {
    const timed = status.trials.filter((t) => typeof t.secondsPer100Iterations === 'number');
    if (timed.length === 0) return null;
    const mean = timed.reduce((s, t) => s + t.secondsPer100Iterations, 0) / timed.length / 100;
    const left = status.trials.filter((t) => t.state === 'Queued' || t.state === 'Running')
      .reduce((s, t) => s + Math.max(0, t.maxIter - t.iteration) * (typeof t.secondsPer100Iterations === 'number' ? t.secondsPer100Iterations / 100 : mean), 0);
    const slots = Math.max(1, (status.slots || []).filter((s) => s.healthy).length);
    return left / slots;
  }

  function renderEta(status) {
    const seconds = status.state === 'Running' && !status.ownerGone ? etaSeconds(status) : null;
    $('eta').hidden = seconds === null;
    if (seconds === null) return;
    const text = seconds < 90 ? Math.round(seconds) + ' s' : seconds < 5400 ? Math.round(seconds / 60) + ' min' : (seconds / 3600).toFixed(1) + ' h';
    $('eta').textContent = 'ETA: about ' + text + ' left (measured seconds per iteration, ' + Math.max(1, (status.slots || []).filter((s) => s.healthy).length) + ' slot(s))';
  }

  // ---- comparing trials: parallel coordinates and final accuracy against a parameter ----
  function parameterAxes(trials) {
    const axes = [{ key: 'batch', value: (t) => t.batchSize, log: true }, { key: 'base lr', value: (t) => t.baseLr, log: true }];
    const names = [...new Set(trials.flatMap((t) => Object.keys(t.parameters || {})))].sort();
    for (const n of names) axes.push({ key: n, value: (t) => (t.parameters || {})[n] });
    for (const a of axes) {
      const values = trials.map(a.value).filter((v) => v !== undefined && v !== null);
      a.categorical = values.some((v) => typeof v !== 'number');
      a.categories = a.categorical ? [...new Set(values.map(String))].sort() : null;
      const numbers = values.filter((v) => typeof v === 'number');
      a.log = a.log && numbers.every((v) => v > 0) && Math.max(...numbers) / Math.min(...numbers) > 10;
      const scaled = numbers.map((v) => a.log ? Math.log10(v) : v);
      a.min = Math.min(...scaled); a.max = Math.max(...scaled);
      // Where a value sits on its axis, 0 to 1.
      a.position = (v) => {
        if (v === undefined || v === null) return null;
        if (a.categorical) return a.categories.length < 2 ? 0.5 : a.categories.indexOf(String(v)) / (a.categories.length - 1);
        const x = a.log ? Math.log10(v) : v;
        return a.max > a.min ? (x - a.min) / (a.max - a.min) : 0.5;
      };
    }
    return axes;
  }

  const finalAccuracy = (t) => typeof t.finalTestAccuracy === 'number' ? t.finalTestAccuracy : null;

  function renderComparisons(status) {
    const finished = status.trials.filter((t) => finalAccuracy(t) !== null);
    const axes = parameterAxes(status.trials);
    drawParallel(finished, axes);
    const choice = $('scatter-parameter');
    const keep = choice.value;
    if ([...choice.options].map((o) => o.value).join('|') !== axes.map((a) => a.key).join('|')) {
      choice.replaceChildren(...axes.map((a) => { const o = el('option', a.key); o.value = a.key; return o; }));
      if (axes.some((a) => a.key === keep)) choice.value = keep;
    }
    drawScatter(finished, axes.find((a) => a.key === choice.value) || axes[0]);
  }

  function drawParallel(trials, axes) {
    const canvas = $('parallel');
    const g = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height, top = 24, bottom = h - 36;
    const all = axes.concat([{ key: 'test acc', position: null }]);
    const accuracies = trials.map(finalAccuracy);
    const lo = Math.min(...accuracies), hi = Math.max(...accuracies);
    const accuracyAt = (v) => hi > lo ? (v - lo) / (hi - lo) : 0.5;
    const x = (i) => 40 + i * (w - 80) / Math.max(1, all.length - 1);
    g.clearRect(0, 0, w, h);
    g.font = '12px system-ui, sans-serif';
    g.textAlign = 'center';
    parallelLines = 0;
    for (const t of trials) {
      const a = finalAccuracy(t);
      g.strokeStyle = 'hsl(' + Math.round(120 * accuracyAt(a)) + ', 70%, 42%)';
      g.setLineDash(t.state === 'Completed' ? [] : [4, 3]);
      g.beginPath();
      all.forEach((axis, i) => {
        const p = axis.position ? axis.position(axis.value(t)) : accuracyAt(a);
        const y = bottom - (p ?? 0.5) * (bottom - top);
        if (i === 0) g.moveTo(x(i), y); else g.lineTo(x(i), y);
      });
      g.stroke();
      parallelLines++;
    }
    g.setLineDash([]);
    g.strokeStyle = '#555';
    g.fillStyle = '#222';
    all.forEach((axis, i) => {
      g.beginPath(); g.moveTo(x(i), top); g.lineTo(x(i), bottom); g.stroke();
      g.fillText(axis.key + (axis.log ? ' (log)' : ''), x(i), h - 18);
      const ends = axis.position ? (axis.categorical ? [axis.categories[0], axis.categories[axis.categories.length - 1]] : [axis.min, axis.max].map((v) => axis.log ? 10 ** v : v)) : [lo, hi];
      g.fillText(formatTick(ends[1]), x(i), top - 8);
      g.fillText(formatTick(ends[0]), x(i), h - 4);
    });
  }

  const formatTick = (v) => typeof v === 'number' ? (Number.isFinite(v) ? String(+v.toPrecision(4)) : '-') : String(v ?? '');

  function drawScatter(trials, axis) {
    if (!axis) return;
    const data = trials.map((t) => ({ x: axis.categorical ? axis.categories.indexOf(String(axis.value(t))) : axis.value(t), y: finalAccuracy(t), name: t.name }))
      .filter((p) => p.x !== undefined && p.x !== null && p.x !== -1);
    const xScale = axis.categorical
      ? { type: 'linear', ticks: { stepSize: 1, callback: (v) => axis.categories[v] ?? '' }, title: { display: true, text: axis.key } }
      : { type: axis.log ? 'logarithmic' : 'linear', title: { display: true, text: axis.key } };
    // The same axis as the last refresh: new points into the same chart (no flicker, no re-layout).
    const key = axis.key + '|' + (axis.log ? 'log' : 'lin') + '|' + (axis.categorical ? axis.categories.join('\u0001') : '');
    if (scatter && scatterKey === key) {
      scatter.data.datasets[0].data = data;
      scatter.update('none');
      return;
    }
    if (scatter) scatter.destroy();
    scatterKey = key;
    scatterCharts++;
    scatter = new Chart($('scatter-chart'), {
      type: 'scatter',
      data: { datasets: [{ label: 'final test accuracy', data, pointRadius: 4, backgroundColor: 'hsl(210, 70%, 45%)' }] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: xScale, y: { title: { display: true, text: 'final test accuracy' } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => c.raw.name + ': ' + c.raw.y.toFixed(4) } } },
      },
    });
  }

  // ---- picking trials ----
  function applyVisibility() {
    if (!charts || !lastStatus) return;
    for (const t of lastStatus.trials) {
      const i = charts.byTrial.get(t.id);
      if (i === undefined) continue;
      const show = !hidden.has(t.id);
      charts.accuracy.data.datasets[i].hidden = !show;
      charts.loss.data.datasets[i].hidden = !show;
      // A curve that ended early (diverged, stopped) ends with a cross where it ended.
      const ended = t.state === 'Diverged' || t.state === 'Stopped';
      for (const chart of [charts.accuracy, charts.loss]) {
        const d = chart.data.datasets[i];
        d.pointStyle = 'crossRot';
        d.pointRadius = (c) => ended && c.dataIndex === d.data.length - 1 ? 7 : 0;
        d.pointBorderWidth = 2;
        d.ended = ended;
      }
    }
    for (const box of document.querySelectorAll('#trials tbody tr')) {
      const pick = box.querySelector('input');
      if (pick) pick.checked = !hidden.has(box.dataset.trialId);
    }
    charts.accuracy.update('none');
    charts.loss.update('none');
  }

  // ---- curves ----
  function makeCharts(trials) {
    if (charts) { charts.accuracy.destroy(); charts.loss.destroy(); }
    const byTrial = new Map();
    const datasets = () => trials.map((t, i) => ({
      label: t.name, data: [], borderColor: 'hsl(' + ((i * 137.5) % 360) + ', 65%, 45%)',
      backgroundColor: 'transparent', borderWidth: 1.5, pointRadius: 0, tension: 0, borderDash: DASHES[i % DASHES.length],
    }));
    trials.forEach((t, i) => byTrial.set(t.id, i));
    const options = (title, max) => ({
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      scales: { x: { type: 'linear', title: { display: true, text: 'iteration' } }, y: { title: { display: true, text: title }, suggestedMin: 0, suggestedMax: max } },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
    });
    charts = {
      byTrial,
      accuracy: new Chart($('accuracy-chart'), { type: 'line', data: { datasets: datasets() }, options: options('test accuracy', 1) }),
      loss: new Chart($('loss-chart'), { type: 'line', data: { datasets: datasets() }, options: options('training loss') }),
    };
    applyVisibility();
  }

  function addPoint(progress) {
    if (!charts) return;
    const i = charts.byTrial.get(progress.trialId);
    if (i === undefined) return;
    const m = progress.metrics;
    if (typeof m.testAccuracy === 'number') charts.accuracy.data.datasets[i].data.push({ x: m.iteration, y: m.testAccuracy });
    if (typeof m.trainLoss === 'number' && isFinite(m.trainLoss)) charts.loss.data.datasets[i].data.push({ x: m.iteration, y: m.trainLoss });
    if (!updatePending) {
      updatePending = true;
      requestAnimationFrame(() => { updatePending = false; if (charts) { charts.accuracy.update('none'); charts.loss.update('none'); } });
    }
  }

  function follow(id) {
    source = new EventSource(sweepPath(id) + '/events');
    const mine = source;
    source.addEventListener('trial-progress', (e) => { if (mine === source) addPoint(JSON.parse(e.data)); });
    for (const type of ['trial-started', 'trial-completed', 'trial-diverged', 'trial-stopped-early', 'trial-failed', 'trial-requeued', 'sweep-interrupted', 'slot-checked']) {
      source.addEventListener(type, () => { if (mine === source) scheduleStatus(); });
    }
    source.addEventListener('end', () => {
      mine.close();
      if (mine === source) { source = null; loadStatus(); loadSweeps(); }
    });
    source.addEventListener('open', () => { $('connection').textContent = ''; });
    source.addEventListener('error', () => { if (mine === source) $('connection').textContent = 'event stream interrupted; reconnecting…'; });
  }

  // ---- logs ----
  async function loadLogs(trial) {
    const id = selected;
    const response = await api(sweepPath(id) + '/logs?trial=' + encodeURIComponent(trial));
    if (!response.ok || id !== selected) return;
    const lines = await response.json();
    $('logs').hidden = false;
    $('logs-title').textContent = 'Log lines of ' + trial + ' (' + lines.length + ')';
    $('log-lines').textContent = lines.length === 0 ? '(no lines)'
      : lines.map((l) => new Date(l.at).toLocaleTimeString() + ' [' + l.level + '] ' + l.message).join('\n');
  }

  // ---- report (written when a sweep run ends, or by `sweep report`) ----
  async function loadReport(id, tries = 10) {
    const response = await api(sweepPath(id) + '/report');
    if (id !== selected) return;
    if (!response.ok) {
      // `sweep run` writes the report just after the sweep's last event: look again for a little while.
      if (tries > 1) setTimeout(() => loadReport(id, tries - 1), 2000);
      return;
    }
    const { files } = await response.json();
    const base = sweepPath(id) + '/report/';
    const links = $('report-files');
    const figures = $('report-figures');
    links.replaceChildren();
    figures.replaceChildren();
    for (const file of files) {
      const a = el('a', file);
      a.href = base + encodeURIComponent(file);
      a.target = '_blank';
      a.rel = 'noopener';
      links.appendChild(a);
      if (file.endsWith('.png')) {
        const img = el('img');
        img.src = base + encodeURIComponent(file);
        img.alt = file;
        figures.appendChild(img);
      }
    }
    $('report-text').textContent = '';
    if (files.includes('report.md')) {
      const text = await fetch(base + 'report.md');
      if (text.ok && id === selected) $('report-text').textContent = await text.text();
    }
    $('report').hidden = false;
  }

  // For tests and curious people: what the page drew.
  window.sweepDashboard = {
    accuracyPoints: () => charts ? charts.accuracy.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0,
    selected: () => selected,
    visibleCurves: () => charts ? charts.accuracy.data.datasets.filter((d) => !d.hidden).map((d) => d.label) : [],
    endMarkers: () => charts ? charts.accuracy.data.datasets.filter((d) => d.ended && d.data.length > 0).length : 0,
    parallelLines: () => parallelLines,
    scatterPoints: () => scatter ? scatter.data.datasets[0].data.length : 0,
    scatterCharts: () => scatterCharts,
    rerender: () => { if (lastStatus) renderStatus(lastStatus); },
    etaSeconds: () => lastStatus ? etaSeconds(lastStatus) : null,
    status: () => lastStatus ? JSON.stringify(lastStatus) : null,
  };

  $('scatter-parameter').addEventListener('change', () => { if (lastStatus) renderComparisons(lastStatus); });
  $('show-all').addEventListener('click', () => { hidden.clear(); applyVisibility(); });
  $('all-rows').addEventListener('click', () => { allRows = true; if (lastStatus) renderStatus(lastStatus); });
  $('show-best').addEventListener('click', () => {
    if (!lastStatus) return;
    const best = lastStatus.trials.filter((t) => finalAccuracy(t) !== null).sort((a, b) => finalAccuracy(b) - finalAccuracy(a)).slice(0, 5).map((t) => t.id);
    hidden.clear();
    for (const t of lastStatus.trials) if (!best.includes(t.id)) hidden.add(t.id);
    applyVisibility();
  });
  // A link with #sweep=ID opens that sweep.
  const fromHash = () => decodeURIComponent(location.hash.replace(/^#sweep=/, ''));
  window.addEventListener('hashchange', () => { if (fromHash() && fromHash() !== selected) select(fromHash()); });
  if (location.hash.startsWith('#sweep=')) select(fromHash());

  loadSweeps();
  setInterval(loadSweeps, 5000);
})();
