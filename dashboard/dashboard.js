/* The sluice dashboard: one live stream of overviews (/api/stream, one a
 * second) drawn with uPlot, tables sortable by column, and a session panel
 * with a live tail (/api/tail). Everything comes from this node; nothing
 * from the internet. */
(function () {
  'use strict';

  const WINDOW_POINTS = 300; // five minutes at one point a second
  const TAIL_LINES = 500;

  // A token can be handed over in the URL fragment (#token=…), which never reaches the server's logs.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('token')) {
    sessionStorage.setItem('sluice-token', fragment.get('token'));
    history.replaceState(null, '', location.pathname);
  }
  const token = () => sessionStorage.getItem('sluice-token');
  const headers = () => (token() ? { authorization: 'Bearer ' + token() } : {});

  const $ = (id) => document.getElementById(id);

  function si(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);
  }
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
  }
  function seconds(s) {
    return s == null ? '-' : s >= 1 ? s.toFixed(2) + ' s' : (s * 1000).toFixed(1) + ' ms';
  }

  /** Read server-sent events from a fetch response (fetch, unlike EventSource, can send the token header). */
  async function readEvents(response, onEvent, signal) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    while (!signal || !signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) onEvent(event, data.join('\n'));
      }
    }
  }

  // ---- charts -------------------------------------------------------------

  const COLORS = ['#4fb3ff', '#5fd38d', '#ffb454', '#ff6b6b', '#c792ea', '#89ddff'];

  function makeChart(el, labels, format) {
    const series = [{}].concat(labels.map((label, i) => ({
      label, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false },
      value: (_u, v) => (v == null ? '-' : format(v)),
    })));
    const opts = {
      width: Math.max(300, el.clientWidth), height: 180, series,
      axes: [
        { stroke: '#8a96a3', grid: { stroke: '#222b35' } },
        { stroke: '#8a96a3', grid: { stroke: '#222b35' }, size: 84, values: (_u, ticks) => ticks.map(format) },
      ],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    const data = [[]].concat(labels.map(() => []));
    const plot = new uPlot(opts, data, el);
    return { plot, data, labels };
  }

  function push(chart, time, values) {
    chart.data[0].push(time);
    values.forEach((v, i) => chart.data[i + 1].push(v));
    if (chart.data[0].length > WINDOW_POINTS) for (const column of chart.data) column.shift();
    chart.plot.setData(chart.data);
  }

  const charts = {
    messages: makeChart($('chart-messages'), ['received', 'accepted', 'delivered', 'dropped'], si),
    bytes: makeChart($('chart-bytes'), ['received', 'accepted', 'delivered'], bytes),
    connections: makeChart($('chart-connections'), ['connections', 'sessions'], si),
    memory: null, // series depend on what the node reports (sluice_memory_* when present)
    loop: null,
    ack: makeChart($('chart-ack'), ['p50', 'p90', 'p99', 'max'], seconds),
  };

  /** Memory series, in bytes: the governor's sluice_memory_*_bytes when present, and process RSS and heap used. */
  function memorySeries(memory) {
    return Object.keys(memory).filter((k) => /_bytes($|\{)/.test(k)).sort();
  }
  /** Event-loop delay: sluice_event_loop_delay_* when present, else prom-client's nodejs_eventloop_lag_*. */
  function loopSeries(loop) {
    const keys = Object.keys(loop).sort();
    const own = keys.filter((k) => k.startsWith('sluice_event_loop_delay_'));
    if (own.length > 0) return own;
    return keys.filter((k) => /nodejs_eventloop_lag_(p50|p99|max)_seconds$/.test(k));
  }
  const QUANTILE_NAMES = { '0.5': 'p50', '0.9': 'p90', '0.99': 'p99', '1': 'max' };
  function short(name) {
    const quantile = /\{quantile=([^,}]+)\}$/.exec(name);
    if (quantile) return QUANTILE_NAMES[quantile[1]] || 'q' + quantile[1];
    return name.replace(/^sluice_memory_|^sluice_event_loop_delay_|^nodejs_eventloop_lag_|^process_|^nodejs_/, '')
      .replace(/_bytes/, '').replace(/_seconds$/, '').replace(/\{component=([^}]+)\}/, ' $1');
  }
  const MEMORY_STATES = ['normal', 'soft', 'hard'];
  /** UDP datagrams lost before sluice made records of them (see Overview.udp). */
  function udpText(udp) {
    if (!udp) return '';
    return ' · UDP lost: ' + si(udp.handoffDropped) + ' in hand-off, ' + si(udp.kernelDropped) + ' in kernel (host RcvbufErrors ' + si(udp.hostReceiveBufferErrors) + ')';
  }

  function governorText(memory) {
    if (memory.sluice_memory_state === undefined) return '';
    const state = MEMORY_STATES[memory.sluice_memory_state] || String(memory.sluice_memory_state);
    const pressure = memory.sluice_memory_pressure === undefined ? '' : ' ' + Math.round(memory.sluice_memory_pressure * 100) + '%';
    return ' · memory ' + state + pressure;
  }

  // ---- tables -------------------------------------------------------------

  const sortState = { tenants: 'recordsPerSec', sessions: 'bytesPerSec' };
  let latest = null;
  let selected = null;

  for (const id of ['tenants', 'sessions']) {
    $(id).querySelector('thead').addEventListener('click', (e) => {
      const key = e.target.dataset && e.target.dataset.key;
      if (!key) return;
      sortState[id] = key;
      if (latest) renderTables(latest);
    });
  }

  function sortRows(rows, key) {
    return rows.slice().sort((a, b) => {
      const x = a[key], y = b[key];
      if (typeof x === 'number' && typeof y === 'number') return y - x;
      return String(x ?? '').localeCompare(String(y ?? ''));
    });
  }

  function markSorted(id) {
    for (const th of $(id).querySelectorAll('th')) th.classList.toggle('sorted', th.dataset.key === sortState[id]);
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function renderTables(o) {
    const tbody = $('tenants').querySelector('tbody');
    tbody.replaceChildren(...sortRows(o.tenants, sortState.tenants).slice(0, 50).map((t) => {
      const tr = document.createElement('tr');
      tr.append(cell(t.tenant), cell(si(t.recordsPerSec), 'num'), cell(bytes(t.bytesPerSec), 'num'), cell(bytes(t.acceptedBytes), 'num'),
        cell(bytes(t.queuedBytes), 'num'), cell(String(t.errors), 'num'), cell(String(t.sessions), 'num'));
      return tr;
    }));
    markSorted('tenants');

    const sinks = $('sinks').querySelector('tbody');
    sinks.replaceChildren(...o.sinks.map((s) => {
      const tr = document.createElement('tr');
      const fill = document.createElement('td');
      if (s.fill == null) fill.textContent = '-';
      else {
        const bar = document.createElement('span');
        bar.className = 'bar';
        const inner = document.createElement('span');
        inner.style.width = Math.min(100, s.fill * 100).toFixed(0) + '%';
        bar.append(inner);
        fill.append(bar, ' ' + (s.fill * 100).toFixed(0) + '%');
      }
      const health = cell(s.healthy ? 'up' : 'down', s.healthy ? 'ok' : 'bad');
      health.title = s.detail;
      tr.append(cell(s.name), health, cell(si(s.writtenRecords), 'num'), cell(bytes(s.queuedBytes), 'num'), fill, cell(si(s.droppedRecords), 'num'));
      return tr;
    }));

    const sessions = $('sessions').querySelector('tbody');
    sessions.replaceChildren(...sortRows(o.sessions, sortState.sessions).slice(0, 100).map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.session = s.id;
      tr.append(cell(s.id), cell(s.tenant ?? '-'), cell(s.host ?? '-'), cell(s.peer), cell(bytes(s.bytesPerSec), 'num'), cell(bytes(s.bytes), 'num'),
        cell(bytes(s.queuedBytes), 'num'), cell(String(s.errors), 'num'), cell(s.governed ? 'governed' : s.throttled ? 'throttled' : ''));
      tr.addEventListener('click', () => openSession(s.id));
      return tr;
    }));
    markSorted('sessions');
    $('session-count').textContent = '(' + o.sessions.length + ' shown of ' + o.sessionCount + ')';
  }

  // ---- session details and live tail ---------------------------------------

  let tailAbort = null;

  function renderDetails(session) {
    const fields = $('details-fields');
    if (!session) {
      fields.replaceChildren(Object.assign(document.createElement('dd'), { textContent: 'closed' }));
      return;
    }
    const rows = [
      ['tenant', session.tenant ?? '-'], ['host', session.host ?? '-'], ['peer', session.peer], ['source', session.source + ' (' + session.protocol + ')'],
      ['opened', new Date(session.openedAt).toISOString()], ['records', si(session.records)], ['bytes', bytes(session.bytes)],
      ['rate', session.bytesPerSec == null ? '-' : bytes(session.bytesPerSec) + '/s'], ['queued', bytes(session.queuedBytes)],
      ['errors', String(session.errors)], ['state', session.governed ? 'governed' : session.throttled ? 'throttled' : 'reading'],
    ];
    fields.replaceChildren(...rows.flatMap(([k, v]) => [
      Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v }),
    ]));
  }

  async function openSession(id) {
    selected = id;
    $('details').hidden = false;
    $('details-id').textContent = id;
    $('details-tail').textContent = '';
    const fromStream = latest && latest.sessions.find((s) => s.id === id);
    renderDetails(fromStream);
    try {
      const response = await fetch('/api/sessions/' + encodeURIComponent(id), { headers: headers() });
      if (response.ok && selected === id) renderDetails(Object.assign({}, fromStream, await response.json()));
    } catch { /* the stream keeps the panel current */ }
    startTail(id);
  }

  async function startTail(id) {
    if (tailAbort) tailAbort.abort();
    const abort = new AbortController();
    tailAbort = abort;
    const out = $('details-tail');
    try {
      const response = await fetch('/api/tail?session=' + encodeURIComponent(id), { headers: headers(), signal: abort.signal });
      if (response.status === 401 || response.status === 403) {
        $('token-form').hidden = false;
        out.textContent = 'The live tail needs an admin token.';
        return;
      }
      if (!response.ok) {
        out.textContent = 'tail: HTTP ' + response.status;
        return;
      }
      $('token-form').hidden = true;
      let lines = [];
      let timer = null;
      // Records may arrive by the thousand a second: redraw at most five times a second.
      const redraw = () => {
        timer = null;
        out.textContent = lines.join('\n');
        out.scrollTop = out.scrollHeight;
      };
      await readEvents(response, (event, data) => {
        if (event === 'dropped') data = '… ' + JSON.parse(data).dropped + ' records skipped (this page reads slower than they arrive)';
        lines.push(data);
        if (lines.length > 2 * TAIL_LINES) lines = lines.slice(-TAIL_LINES);
        if (timer === null) timer = setTimeout(redraw, 200);
      }, abort.signal);
    } catch (err) {
      if (!abort.signal.aborted) out.textContent += '\n(tail ended: ' + err.message + ')';
    }
  }

  $('details-close').addEventListener('click', () => {
    selected = null;
    if (tailAbort) tailAbort.abort();
    $('details').hidden = true;
  });
  $('details-disconnect').addEventListener('click', async () => {
    if (!selected) return;
    const response = await fetch('/api/sessions/' + encodeURIComponent(selected), { method: 'DELETE', headers: headers() });
    if (response.status === 401 || response.status === 403) $('token-form').hidden = false;
  });
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('sluice-token', $('token-input').value.trim());
    $('token-form').hidden = true;
    if (selected) startTail(selected);
  });

  // ---- the live stream -----------------------------------------------------

  function onOverview(o) {
    latest = o;
    const t = o.time / 1000;
    const r = o.rates;
    push(charts.messages, t, [r.receivedRecords, r.acceptedRecords, r.deliveredRecords, r.droppedRecords]);
    push(charts.bytes, t, [r.receivedBytes, r.acceptedBytes, r.deliveredBytes]);
    push(charts.connections, t, [o.totals.connections, o.totals.sessions]);
    const memKeys = memorySeries(o.memory);
    if (!charts.memory && memKeys.length > 0) charts.memory = makeChart($('chart-memory'), memKeys.map(short), bytes);
    if (charts.memory) push(charts.memory, t, memKeys.map((k) => o.memory[k] ?? null));
    const loopKeys = loopSeries(o.eventLoop);
    if (!charts.loop && loopKeys.length > 0) charts.loop = makeChart($('chart-loop'), loopKeys.map(short), seconds);
    if (charts.loop) push(charts.loop, t, loopKeys.map((k) => o.eventLoop[k] ?? null));
    const ack = o.ackLatencyInterval;
    push(charts.ack, t, ack ? [ack.p50, ack.p90, ack.p99, ack.max] : [null, null, null, null]);

    $('scope').textContent = o.scope ? 'tenant ' + o.scope : 'whole node';
    $('headline').textContent = si(r.acceptedRecords) + ' rec/s in · ' + si(r.deliveredRecords) + ' rec/s out · '
      + o.totals.connections + ' connections' + governorText(o.memory) + (o.restarts != null ? ' · ' + o.restarts + ' restarts' : '') + udpText(o.udp);
    renderTables(o);
    if (selected) {
      const s = o.sessions.find((x) => x.id === selected);
      if (s) renderDetails(s);
    }
  }

  async function stream() {
    for (;;) {
      try {
        const response = await fetch('/api/stream', { headers: headers() });
        if (!response.ok) throw new Error('HTTP ' + response.status + (response.status === 401 ? ': an admin token is needed (#token=… in the URL)' : ''));
        $('status').textContent = 'live';
        $('status').className = 'status live';
        await readEvents(response, (event, data) => { if (event === 'overview') onOverview(JSON.parse(data)); });
        throw new Error('stream ended');
      } catch (err) {
        $('status').textContent = 'disconnected (' + err.message + '), retrying';
        $('status').className = 'status down';
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  window.addEventListener('resize', () => {
    for (const chart of Object.values(charts)) if (chart) chart.plot.setSize({ width: Math.max(300, chart.plot.root.parentElement.clientWidth), height: 180 });
  });

  // ---- cluster (only when the node is a cluster member) ----------------------

  function renderCluster(c) {
    const leader = c.leader ? c.leader.id : null;
    $('cluster-summary').textContent = '(' + c.members.length + ' nodes seen from ' + c.nodeId + ', leader ' + (leader ?? 'none')
      + (c.connected ? '' : ', NATS unreachable') + ')';
    const now = Date.now();
    $('cluster-members').querySelector('tbody').replaceChildren(...c.members.map((m) => {
      const tr = document.createElement('tr');
      const link = document.createElement('td');
      if (m.admin && m.id !== c.nodeId) {
        const a = document.createElement('a');
        a.href = m.admin + '/';
        a.textContent = m.admin;
        link.append(a);
      } else link.textContent = m.id === c.nodeId ? 'this node' : '-';
      tr.append(cell(m.id), cell(m.id === leader ? 'leader' : 'member', m.id === leader ? 'ok' : ''), cell(String(m.load.connections), 'num'),
        cell(si(m.load.recordsPerSec), 'num'), cell(bytes(m.load.bytesPerSec), 'num'), cell(bytes(m.load.rssBytes), 'num'),
        cell(MEMORY_STATES[m.load.memoryState] ?? String(m.load.memoryState), m.load.memoryState > 0 ? 'bad' : ''),
        cell(Math.max(0, Math.round((now - m.heartbeatAt) / 1000)) + 's', 'num'), link);
      return tr;
    }));
  }

  async function pollCluster() {
    for (;;) {
      try {
        const response = await fetch('/api/cluster', { headers: headers() });
        // 404: this node runs alone; the section stays hidden and is not asked for again.
        if (response.status === 404) return;
        if (response.ok) {
          const status = await response.json();
          $('cluster').hidden = false;
          renderCluster(status);
        }
      } catch {
        // The overview stream reports the connection; try again at the next round.
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  // For tests and the curious: the charts' data.
  window.sluiceDashboard = { charts, get latest() { return latest; } };
  stream();
  pollCluster();
})();
