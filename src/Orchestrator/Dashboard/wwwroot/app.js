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
    $('sweep-title').textContent = status.sweepId + ' (' + status.name + ')';
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
    for (const t of status.trials) {
      const row = el('tr', null, t.state);
      row.dataset.trial = t.name;
      const note = t.state === 'Diverged' ? 'diverged at ' + t.divergedAtIteration + ': ' + (t.divergenceReason || '')
        : t.state === 'Stopped' ? 'stopped early at ' + t.stoppedAtIteration + ': ' + (t.stopReason || '')
        : t.state === 'Failed' ? (t.error || '') : t.error ? 'last error: ' + t.error : '';
      const accuracy = t.finalTestAccuracy ?? t.bestTestAccuracy;
      const cells = [t.name, t.batchSize, t.baseLr, t.state, t.attempts, t.iteration + '/' + t.maxIter,
        fmt(accuracy, 4), fmt(t.secondsPer100Iterations, 2),
        t.peakMemoryBytes > 0 ? (t.peakMemoryBytes / 1048576).toFixed(0) : '-', note];
      for (const c of cells) row.appendChild(el('td', c));
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

  // ---- curves ----
  function makeCharts(trials) {
    if (charts) { charts.accuracy.destroy(); charts.loss.destroy(); }
    const byTrial = new Map();
    const datasets = () => trials.map((t, i) => ({
      label: t.name, data: [], borderColor: 'hsl(' + ((i * 137.5) % 360) + ', 65%, 45%)',
      backgroundColor: 'transparent', borderWidth: 1.5, pointRadius: 0, tension: 0,
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

  // For tests and curious people: the number of points on the accuracy chart.
  window.sweepDashboard = {
    accuracyPoints: () => charts ? charts.accuracy.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0,
    selected: () => selected,
  };

  loadSweeps();
  setInterval(loadSweeps, 5000);
})();
