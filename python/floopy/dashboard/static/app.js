// Floopy dashboard: renders each page from its JSON API (/api/...).
// Every logged value reaches the document as text (element.append of a string, textContent),
// never as markup: no innerHTML anywhere. The CSP forbids inline scripts; this file is all.
'use strict';
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const params = new URLSearchParams(location.search);
  const page = document.body.dataset.page;
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = ['#4f46e5', '#0891b2', '#d97706', '#16a34a', '#db2777', '#7c3aed', '#dc2626',
    '#0d9488', '#ca8a04', '#2563eb'];
  let lastFocus = null;

  // --- building blocks ----------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const num = (v) => (v === null || v === undefined ? '–' : Number(v).toLocaleString('en-US'));
  const ms = (v) => (v === null || v === undefined || Number.isNaN(Number(v)) ? '–'
    : Number(v) >= 1000 ? `${(Number(v) / 1000).toFixed(2)} s` : `${Number(v).toFixed(1)} ms`);
  const cost = (v) => {
    if (v === null || v === undefined) return '–';
    const n = Number(v);
    return n !== 0 && Math.abs(n) < 0.01 ? `$${n.toFixed(6)}` : `$${n.toFixed(2)}`;
  };
  const pad = (n) => String(n).padStart(2, '0');
  function when(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // The page's filters, with some changed: the query string of a link.
  function query(changes = {}, keep = true) {
    const next = new URLSearchParams(keep ? params : '');
    for (const [name, value] of Object.entries(changes)) {
      if (value === null || value === undefined || value === '') next.delete(name);
      else next.set(name, value);
    }
    const text = next.toString();
    return text ? `?${text}` : '';
  }

  async function api(path, changes = {}, keep = true) {
    const answer = await fetch(`/api/${path}${query(changes, keep)}`, {
      headers: { accept: 'application/json' }, credentials: 'same-origin',
    });
    if (answer.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      throw new Error('logged out');
    }
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error ? body.error.message : `HTTP ${answer.status}`);
    return body;
  }

  function show(...nodes) {
    const content = $('#content');
    content.replaceChildren(...nodes);
  }

  function failed(error) {
    document.body.classList.add('failed');
    show(el('p', { class: 'error', role: 'alert' }, `Could not load: ${error.message}`));
  }

  function table(columns, rows, options = {}) {
    const head = el('tr', null, columns.map((c) => el('th', {
      scope: 'col', class: c.num ? 'num' : null,
    }, c.title)));
    const body = rows.map((row) => el('tr', options.rowAttrs ? options.rowAttrs(row) : null,
      columns.map((c) => el('td', { class: c.num ? 'num' : null }, c.cell(row)))));
    const empty = rows.length ? null
      : el('tr', null, el('td', { colspan: columns.length, class: 'muted' }, options.empty || 'Nothing in this range.'));
    return el('div', { class: 'table-wrap' },
      el('table', { class: options.class || null }, el('thead', null, head), el('tbody', null, body, empty)));
  }

  function cards(items) {
    return el('div', { class: 'cards' }, items.map(([label, value, note]) => el('div', { class: 'card' },
      el('div', { class: 'card-label' }, label), el('div', { class: 'card-value' }, value),
      note ? el('div', { class: 'card-note' }, note) : null)));
  }

  function section(title, ...children) {
    return el('section', { class: 'block' }, el('h2', null, title), children);
  }

  function link(href, text) {
    return el('a', { href }, text);
  }

  // A bar chart of one measure over time buckets; hover or focus a bar for its value.
  function barChart(series, key, label, format = num) {
    const width = 640; const height = 160; const top = 10; const bottom = 22;
    const max = Math.max(1e-9, ...series.map((p) => Number(p[key]) || 0));
    const step = series.length ? width / series.length : width;
    const bars = series.map((p, i) => {
      const h = ((Number(p[key]) || 0) / max) * (height - top - bottom);
      return svg('rect', {
        x: i * step + 1, y: height - bottom - h, width: Math.max(1, step - 2), height: h, class: 'bar',
      }, svg('title', null, `${when(p.t)}: ${format(p[key])}`));
    });
    const first = series.length ? when(series[0].t) : '';
    const last = series.length ? when(series[series.length - 1].t) : '';
    return el('figure', { class: 'chart' },
      svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${label} over time` },
        bars,
        svg('text', { x: 0, y: height - 6, class: 'axis' }, first),
        svg('text', { x: width, y: height - 6, class: 'axis end' }, last),
        svg('text', { x: 0, y: 10, class: 'axis' }, `max ${format(max)}`)),
      el('figcaption', null, label));
  }

  // Every bucket of the range, those without requests at zero: time reads left to right.
  function filled(data) {
    const step = data.bucket_seconds * 1000;
    const have = new Map(data.series.map((p) => [new Date(p.t).getTime(), p]));
    const out = [];
    for (let t = Math.floor((data.start * 1000) / step) * step; t < data.end * 1000; t += step) {
      out.push(have.get(t) || { t: new Date(t).toISOString(), requests: 0, errors: 0, cost: 0, total_tokens: 0 });
    }
    return out.length <= 500 ? out : data.series;
  }

  // Lines, one per series name, over shared time buckets.
  function lineChart(points, seriesKey, key, label, format = num) {
    const width = 1000; const height = 240; const top = 14; const bottom = 22;
    const times = [...new Set(points.map((p) => p.t))].sort();
    const names = [...new Set(points.map((p) => p[seriesKey]))];
    const max = Math.max(1e-9, ...points.map((p) => Number(p[key]) || 0));
    const x = (t) => (times.length > 1 ? (times.indexOf(t) / (times.length - 1)) * width : width / 2);
    const y = (v) => height - bottom - ((Number(v) || 0) / max) * (height - top - bottom);
    const lines = names.map((name, i) => {
      const mine = points.filter((p) => p[seriesKey] === name);
      const d = mine.map((p, j) => `${j ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
      return svg('g', null,
        svg('path', { d, class: 'line', stroke: COLORS[i % COLORS.length] }),
        mine.map((p) => svg('circle', { cx: x(p.t), cy: y(p[key]), r: 3, fill: COLORS[i % COLORS.length] },
          svg('title', null, `${name} · ${when(p.t)}: ${format(p[key])}`))));
    });
    const legend = el('ul', { class: 'legend' }, names.map((name, i) => el('li', null,
      el('span', { class: `swatch c${i % COLORS.length}` }), name || '(empty)')));
    return el('figure', { class: 'chart' },
      svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label }, lines,
        svg('text', { x: 0, y: height - 6, class: 'axis' }, times.length ? when(times[0]) : ''),
        svg('text', { x: width, y: height - 6, class: 'axis end' }, times.length ? when(times[times.length - 1]) : ''),
        svg('text', { x: 0, y: 10, class: 'axis' }, `max ${format(max)}`)),
      el('figcaption', null, label), legend);
  }

  function sparkline(trend) {
    const width = 100; const height = 24;
    const max = Math.max(1, ...trend.map((p) => p[1]));
    const step = trend.length > 1 ? width / (trend.length - 1) : 0;
    const d = trend.map((p, i) => `${i ? 'L' : 'M'}${(i * step).toFixed(1)},${(height - 2 - (p[1] / max) * (height - 4)).toFixed(1)}`).join(' ');
    return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'spark', role: 'img', 'aria-label': 'requests trend' },
      svg('path', { d, class: 'line' }));
  }

  // --- filters ------------------------------------------------------------------------------

  function setUpFilters() {
    const form = $('#filters');
    if (!form) return;
    for (const field of form.elements) {
      if (field.name && params.has(field.name)) field.value = params.get(field.name);
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const [name, value] of new FormData(form)) {
        if (String(value).trim() !== '') next.append(name, String(value).trim());
      }
      location.assign(`${form.getAttribute('action')}${next.toString() ? `?${next}` : ''}`);
    });
    api('options').then((options) => {
      for (const [kind, values] of Object.entries(options)) {
        const list = $(`#options-${kind}`);
        if (list) list.replaceChildren(...values.map((v) => el('option', { value: kind === 'property' ? `${v}=` : v })));
      }
    }).catch(() => {});
  }

  function sortPicker(choices, current) {
    const select = el('select', { name: 'sort', 'aria-label': 'Sort by' },
      choices.map(([value, title]) => el('option', { value, selected: value === current }, title)));
    select.addEventListener('change', () => location.assign(`${location.pathname}${query({ sort: select.value, offset: null, cursor: null })}`));
    return el('label', { class: 'sort' }, 'Sort ', select);
  }

  // --- Overview -----------------------------------------------------------------------------

  async function overview() {
    const data = await api('overview');
    const t = data.totals || {};
    const rate = t.requests ? `${((100 * t.errors) / t.requests).toFixed(1)}% of requests` : '';
    const breakdown = (dim, title) => table([
      { title, cell: (r) => link(`/requests${query({ [dim]: r.key })}`, r.key || '(none)') },
      { title: 'Requests', num: true, cell: (r) => num(r.requests) },
      { title: 'Errors', num: true, cell: (r) => num(r.errors) },
      { title: 'Cost', num: true, cell: (r) => cost(r.cost) },
      { title: 'Tokens', num: true, cell: (r) => num(r.total_tokens) },
      { title: 'p50', num: true, cell: (r) => ms(r.p50_ms) },
      { title: 'p95', num: true, cell: (r) => ms(r.p95_ms) },
      { title: 'p99', num: true, cell: (r) => ms(r.p99_ms) },
    ], data[`by_${dim}`]);
    show(
      cards([
        ['Requests', num(t.requests)], ['Errors', num(t.errors), rate], ['Cost', cost(t.cost)],
        ['Tokens', num(t.total_tokens), `${num(t.prompt_tokens)} in · ${num(t.completion_tokens)} out`],
        ['Latency p50', ms(t.p50_ms)], ['p95', ms(t.p95_ms)], ['p99', ms(t.p99_ms)],
      ]),
      el('div', { class: 'charts' }, barChart(filled(data), 'requests', 'Requests'),
        barChart(filled(data), 'errors', 'Errors'), barChart(filled(data), 'cost', 'Cost', cost)),
      section('By model', breakdown('model', 'Model')),
      section('By provider', breakdown('provider', 'Provider')),
      section('By project', breakdown('project', 'Project')),
      el('p', { class: 'muted small' }, data.source === 'rollup' ? 'From the per-minute rollup.' : 'From the request rows (a filter the rollup does not have is set).'),
    );
  }

  // --- Requests -----------------------------------------------------------------------------

  const REQUEST_COLUMNS = [
    { title: 'Time', cell: (r) => el('a', { href: `/requests${query({ id: r.request_id })}`, 'data-request': r.request_id, class: 'open' }, when(r.time)) },
    { title: 'Status', cell: (r) => el('span', { class: `status s${String(r.status)[0]}` }, String(r.status)) },
    { title: 'Model', cell: (r) => r.model },
    { title: 'Provider', cell: (r) => r.provider },
    { title: 'User', cell: (r) => r.user_id },
    { title: 'Session', cell: (r) => r.session_id },
    { title: 'Latency', num: true, cell: (r) => ms(r.latency_ms) },
    { title: 'Tokens', num: true, cell: (r) => num(r.total_tokens) },
    { title: 'Cost', num: true, cell: (r) => cost(r.cost_usd) },
    { title: 'Cache', cell: (r) => [r.cache_status, r.cache_tier].filter(Boolean).join(' ') },
    { title: 'Firewall', cell: (r) => r.firewall_verdict },
  ];

  function requestTable(rows) {
    return table(REQUEST_COLUMNS, rows, { class: 'requests', empty: 'No request matches these filters.' });
  }

  async function requestList(changes = {}, keep = true) {
    const data = await api('requests', changes, keep);
    const wrap = requestTable(data.rows);
    const tbody = $('tbody', wrap);
    const holder = el('div', null, wrap);
    let cursor = data.next_cursor;
    if (cursor) {
      const more = el('button', { type: 'button', class: 'more' }, 'Older requests');
      more.addEventListener('click', async () => {
        more.disabled = true;
        const next = await api('requests', { ...changes, cursor }, keep);
        const rows = $('tbody', requestTable(next.rows));
        tbody.append(...rows.children);
        cursor = next.next_cursor;
        if (cursor) more.disabled = false; else more.remove();
      });
      holder.append(more);
    }
    return holder;
  }

  async function requests() {
    const actions = $('#actions');
    actions.replaceChildren(
      sortPicker([['time', 'Time'], ['latency', 'Latency'], ['cost', 'Cost'], ['tokens', 'Tokens']], params.get('sort') || 'time'),
      el('a', { class: 'button ghost', href: `/api/export${query({ format: 'jsonl', id: null, cursor: null })}`, download: 'requests.jsonl' }, 'Export JSONL'),
      el('a', { class: 'button ghost', href: `/api/export${query({ format: 'csv', id: null, cursor: null })}`, download: 'requests.csv' }, 'Export CSV'),
    );
    show(await requestList({ id: null }));
    if (params.get('id')) openRequest(params.get('id'), false);
  }

  // --- the request panel --------------------------------------------------------------------

  function closePanel(push = true) {
    const panel = $('#panel');
    if (panel.hidden) return;
    panel.hidden = true;
    document.body.classList.remove('panel-open');
    if (push && params.get('id') && page === 'requests') {
      params.delete('id');
      history.pushState(null, '', `${location.pathname}${query()}`);
    }
    if (lastFocus) lastFocus.focus();
  }

  async function openRequest(id, push = true) {
    const panel = $('#panel');
    const body = $('#panel-body');
    lastFocus = document.activeElement;
    body.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    panel.hidden = false;
    document.body.classList.add('panel-open');
    $('#panel-close').focus();
    if (push && page === 'requests') {
      params.set('id', id);
      history.pushState(null, '', `${location.pathname}${query()}`);
    }
    try {
      const data = await api(`requests/${encodeURIComponent(id)}`, {}, false);
      body.replaceChildren(...detail(data));
    } catch (error) {
      body.replaceChildren(el('p', { class: 'error', role: 'alert' }, `Could not load: ${error.message}`));
    }
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function detail(data) {
    const r = data.request;
    const copy = el('button', { type: 'button', class: 'ghost small' }, 'Copy');
    copy.addEventListener('click', () => {
      navigator.clipboard.writeText(r.request_id).then(() => { copy.textContent = 'Copied'; }, () => {});
    });
    const facts = [
      ['Time', when(r.time)], ['Status', `${r.status}${r.error_code ? ` ${r.error_code}` : ''}`],
      ['Model', `${r.model || r.requested_model}${r.requested_model && r.requested_model !== r.model ? ` (asked: ${r.requested_model})` : ''}`],
      ['Provider', `${r.provider}${r.fallback_used ? ' (fallback)' : ''}`],
      ['Organization', r.organization], ['Project', r.project], ['API key', r.api_key_id],
      ['User', r.user_id ? link(`/users?id=${encodeURIComponent(r.user_id)}`, r.user_id) : '–'],
      ['Session', r.session_id ? link(`/sessions?id=${encodeURIComponent(r.session_id)}`, r.session_id) : '–'],
      ['Session name / path', [r.session_name, r.session_path].filter(Boolean).join(' · ') || '–'],
      ['Latency', ms(r.latency_ms)], ['Time to first token', ms(r.ttft_ms)],
      ['Stream', r.stream ? 'yes' : 'no'], ['Finish reason', r.finish_reason || '–'],
      ['Endpoint', `${r.method} ${r.path}`], ['Client', r.client_ip || '–'], ['User agent', r.user_agent || '–'],
    ];
    const raw = el('div', { class: 'raw', hidden: true },
      el('h3', null, 'Request body'), el('pre', { class: 'text' }, pretty(r.request_body) || '(not logged)'),
      el('h3', null, 'Response body'), el('pre', { class: 'text' }, pretty(r.response_body) || '(not logged)'));
    const toggle = el('button', { type: 'button', class: 'ghost small', 'aria-expanded': 'false' }, 'Raw JSON');
    toggle.addEventListener('click', () => {
      raw.hidden = !raw.hidden;
      toggle.setAttribute('aria-expanded', String(!raw.hidden));
    });
    const stages = Object.entries(r.stage_latency_ms || {});
    const stageMax = Math.max(1e-9, ...stages.map(([, v]) => v));
    return [
      el('div', { class: 'idline' }, el('code', { class: 'rid' }, r.request_id), copy),
      el('dl', { class: 'facts' }, facts.map(([k, v]) => [el('dt', null, k), el('dd', null, v)])),
      section('Conversation', el('div', { class: 'section-tools' }, toggle),
        el('ol', { class: 'conversation' }, data.conversation.map((turn) => el('li', { class: `turn ${turn.role}` },
          el('div', { class: 'role' }, turn.role), el('pre', { class: 'text' }, turn.text)))),
        raw),
      section('Tokens and cost', table([
        { title: 'Prompt', num: true, cell: () => num(r.prompt_tokens) },
        { title: 'Completion', num: true, cell: () => num(r.completion_tokens) },
        { title: 'Cached', num: true, cell: () => num(r.cached_tokens) },
        { title: 'Reasoning', num: true, cell: () => num(r.reasoning_tokens) },
        { title: 'Cache write', num: true, cell: () => num(r.cache_write_tokens) },
        { title: 'Total', num: true, cell: () => num(r.total_tokens) },
        { title: 'Cost', num: true, cell: () => cost(r.cost_usd) },
      ], [r])),
      section('Latency per stage', el('ul', { class: 'stages' }, stages.map(([name, value]) => {
        const bar = el('span', { class: 'stage-bar' });
        bar.style.width = `${Math.max(0.5, (100 * value) / stageMax)}%`;
        return el('li', null, el('span', { class: 'stage-name' }, name), el('span', { class: 'stage-track' }, bar), el('span', { class: 'num' }, ms(value)));
      }))),
      section('Trace', waterfall(data.spans)),
      section('Events', data.events.length ? el('ul', { class: 'events' }, data.events.map((e) => el('li', null,
        el('span', { class: 'event-kind' }, e.kind), ' ', e.detail, ' ', el('span', { class: 'muted' }, when(e.time)))))
        : el('p', { class: 'muted' }, 'No retries, fallbacks, cache, firewall or circuit-breaker events.')),
      section('Headers', table([
        { title: 'Header', cell: (h) => el('code', null, h[0]) },
        { title: 'Logged value', cell: (h) => h[1] },
      ], loggedHeaders(r), { class: 'headers', empty: 'No request header was logged.' }),
      el('p', { class: 'muted' }, 'Authorization and API keys are never logged: the key is known by its id.')),
      section('Properties', table([
        { title: 'Key', cell: (p) => p[0] },
        { title: 'Value', cell: (p) => link(`/requests${query({ prop: `${p[0]}=${p[1]}`, id: null }, false)}`, p[1]) },
      ], Object.entries(r.properties || {}), { empty: 'No custom properties.' })),
    ];
  }

  // The request headers the log row keeps, by the name the client sent them under.
  function loggedHeaders(r) {
    const found = [
      ['user-agent', r.user_agent],
      ['x-forwarded-for (else the peer address)', r.client_ip],
      ['floopy-user-id (or the body\'s user)', r.user_id],
      ['floopy-session-id', r.session_id],
      ['floopy-session-name', r.session_name],
      ['floopy-session-path', r.session_path],
      ...Object.entries(r.properties || {}).map(([k, v]) => [`floopy-property-${k}`, v]),
    ];
    return found.filter(([, value]) => value);
  }

  function waterfall(spans) {
    if (!spans.length) return el('p', { class: 'muted' }, 'No spans were logged.');
    const start = (s) => new Date(s.start_time).getTime() + (Number(String(s.start_time).slice(23, 26)) || 0) / 1000;
    const t0 = Math.min(...spans.map(start));
    const end = Math.max(...spans.map((s) => start(s) + s.duration_ms));
    const total = Math.max(1e-6, end - t0);
    const children = {};
    for (const s of spans) (children[s.parent_id] = children[s.parent_id] || []).push(s);
    const ids = new Set(spans.map((s) => s.span_id));
    const ordered = [];
    const walk = (s, depth) => {
      ordered.push([s, depth]);
      for (const c of (children[s.span_id] || []).sort((a, b) => start(a) - start(b))) walk(c, depth + 1);
    };
    for (const root of spans.filter((s) => !ids.has(s.parent_id))) walk(root, 0);
    return el('ol', { class: 'waterfall' }, ordered.map(([s, depth]) => {
      const bar = el('span', { class: `span-bar ${s.status === 'ok' ? '' : 'bad'}` });
      bar.style.left = `${(100 * (start(s) - t0)) / total}%`;
      bar.style.width = `${Math.max(0.4, (100 * s.duration_ms) / total)}%`;
      const name = el('span', { class: 'span-name' }, s.name);
      name.style.paddingLeft = `${depth * 0.9}rem`;
      const attributes = Object.entries(s.attributes || {});
      return el('li', null,
        el('details', null,
          el('summary', null, name, el('span', { class: 'span-track' }, bar), el('span', { class: 'num' }, ms(s.duration_ms))),
          el('dl', { class: 'attrs' }, el('dt', null, 'status'), el('dd', null, s.status),
            attributes.map(([k, v]) => [el('dt', null, k), el('dd', null, v)]))));
    }));
  }

  // --- Sessions -----------------------------------------------------------------------------

  function sessionTable(rows) {
    return table([
      { title: 'Session', cell: (s) => link(`/sessions${query({ id: s.session_id, sort: null, offset: null })}`, s.session_id) },
      { title: 'Name', cell: (s) => s.name },
      { title: 'Path', cell: (s) => s.path },
      { title: 'First', cell: (s) => when(s.first_time) },
      { title: 'Last', cell: (s) => when(s.last_time) },
      { title: 'Requests', num: true, cell: (s) => num(s.requests) },
      { title: 'Cost', num: true, cell: (s) => cost(s.cost) },
      { title: 'Tokens', num: true, cell: (s) => num(s.total_tokens) },
      { title: 'Users', cell: (s) => s.users.join(', ') },
    ], rows, { empty: 'No session in this range.' });
  }

  function pager(data) {
    if (data.next_offset === null || data.next_offset === undefined) return null;
    return el('p', null, el('a', { class: 'button ghost', href: `${location.pathname}${query({ offset: data.next_offset })}` }, 'Next page'));
  }

  async function sessions() {
    if (params.get('id')) return sessionPage(params.get('id'));
    $('#actions').replaceChildren(sortPicker([['last', 'Last request'], ['first', 'First request'], ['cost', 'Cost'], ['requests', 'Requests']], params.get('sort') || 'last'));
    const data = await api('sessions');
    return show(sessionTable(data.rows), pager(data));
  }

  async function sessionPage(id) {
    $('#title').textContent = 'Session';
    const data = await api(`sessions/${encodeURIComponent(id)}`, {}, false);
    const s = data.session;
    show(
      el('p', null, link(`/sessions${query({ id: null })}`, '← All sessions')),
      el('div', { class: 'idline' }, el('code', { class: 'rid' }, s.session_id), s.name ? el('span', { class: 'muted' }, s.name) : null),
      cards([['Requests', num(s.requests)], ['Cost', cost(s.cost)], ['Tokens', num(s.total_tokens)],
        ['First', when(s.first_time)], ['Last', when(s.last_time)], ['Users', s.users.join(', ') || '–']]),
      section('Turns', el('ol', { class: 'turns' }, data.turns.map((t, i) => el('li', { class: 'turn-card' },
        el('div', { class: 'turn-head' }, el('strong', null, `Turn ${i + 1}`), ' ', when(t.time), ' · ', t.model, ' · ',
          el('span', { class: `status s${String(t.status)[0]}` }, String(t.status)), ' · ', cost(t.cost_usd),
          t.session_path ? el('span', { class: 'muted' }, ` · ${t.session_path}`) : null, ' ',
          el('button', { type: 'button', class: 'ghost small', 'data-request': t.request_id }, 'Open request')),
        el('div', { class: 'role' }, 'user'), el('pre', { class: 'text' }, t.prompt || '(no prompt logged)'),
        el('div', { class: 'role' }, 'assistant'), el('pre', { class: 'text' }, t.answer || '(no answer logged)'))))),
    );
  }

  // --- Users --------------------------------------------------------------------------------

  async function users() {
    if (params.get('id')) return userPage(params.get('id'));
    $('#actions').replaceChildren(sortPicker([['cost', 'Cost'], ['requests', 'Requests'], ['tokens', 'Tokens'], ['errors', 'Errors'], ['last', 'Last seen']], params.get('sort') || 'cost'));
    const data = await api('users');
    return show(table([
      { title: 'User', cell: (u) => link(`/users${query({ id: u.user_id, sort: null, offset: null })}`, u.user_id) },
      { title: 'Requests', num: true, cell: (u) => num(u.requests) },
      { title: 'Errors', num: true, cell: (u) => num(u.errors) },
      { title: 'Cost', num: true, cell: (u) => cost(u.cost) },
      { title: 'Tokens', num: true, cell: (u) => num(u.total_tokens) },
      { title: 'Last seen', cell: (u) => when(u.last_seen) },
      { title: 'Trend', cell: (u) => sparkline(u.trend || []) },
    ], data.rows, { empty: 'No end user in this range.', class: 'users' }), pager(data));
  }

  async function userPage(id) {
    $('#title').textContent = 'User';
    const [data, sessionData, list] = await Promise.all([
      api(`users/${encodeURIComponent(id)}`, { id: null }),
      api('sessions', { user: id, id: null, sort: null, offset: null }),
      requestList({ user: id, id: null, sort: null }),
    ]);
    const t = data.totals;
    show(
      el('p', null, link(`/users${query({ id: null })}`, '← All users')),
      el('div', { class: 'idline' }, el('code', { class: 'rid' }, id)),
      cards([['Requests', num(t.requests)], ['Errors', num(t.errors)], ['Cost', cost(t.cost)],
        ['Tokens', num(t.total_tokens)], ['Last seen', when(t.last_seen)]]),
      el('div', { class: 'charts' }, barChart(data.series, 'requests', 'Requests'), barChart(data.series, 'cost', 'Cost', cost)),
      section('Sessions', sessionTable(sessionData.rows)),
      section('Requests', list),
    );
  }

  // --- Properties ---------------------------------------------------------------------------

  async function properties() {
    const key = params.get('key');
    const keys = await api('properties', { key: null });
    const picker = el('select', { 'aria-label': 'Property key' }, el('option', { value: '' }, 'Pick a property…'),
      keys.rows.map((k) => el('option', { value: k.property, selected: k.property === key }, k.property)));
    picker.addEventListener('change', () => location.assign(`/properties${query({ key: picker.value })}`));
    $('#actions').replaceChildren(el('label', { class: 'sort' }, 'Property ', picker));
    if (!key) {
      return show(table([
        { title: 'Property', cell: (k) => link(`/properties${query({ key: k.property })}`, k.property) },
        { title: 'Values', num: true, cell: (k) => num(k.values) },
        { title: 'Requests', num: true, cell: (k) => num(k.requests) },
        { title: 'Cost', num: true, cell: (k) => cost(k.cost) },
      ], keys.rows, { empty: 'No request carried a custom property (floopy-property-<name> headers) in this range.' }));
    }
    const data = await api(`properties/${encodeURIComponent(key)}`, { key: null });
    const metric = params.get('metric') || 'cost';
    const formats = { cost, requests: num, total_tokens: num };
    const metricPicker = el('select', { 'aria-label': 'Chart measure' },
      [['cost', 'Cost'], ['requests', 'Requests'], ['total_tokens', 'Tokens']].map(([v, t]) => el('option', { value: v, selected: v === metric }, t)));
    metricPicker.addEventListener('change', () => location.assign(`/properties${query({ metric: metricPicker.value })}`));
    const per = data.bucket_seconds >= 86400 ? 'day' : 'hour';
    return show(
      el('div', { class: 'section-tools' }, el('label', { class: 'sort' }, 'Chart ', metricPicker)),
      lineChart(data.series, 'value', metric, `${metric === 'total_tokens' ? 'Tokens' : metric[0].toUpperCase() + metric.slice(1)} per ${per} by value of ${key}`, formats[metric]),
      section(`Values of ${key}`, table([
        { title: 'Value', cell: (v) => link(`/requests${query({ prop: `${key}=${v.value}`, key: null, metric: null })}`, v.value || '(empty)') },
        { title: 'Requests', num: true, cell: (v) => num(v.requests) },
        { title: 'Errors', num: true, cell: (v) => num(v.errors) },
        { title: 'Tokens', num: true, cell: (v) => num(v.total_tokens) },
        { title: 'Cost', num: true, cell: (v) => cost(v.cost) },
      ], data.values)),
      section(`Per ${per}`, table([
        { title: per === 'day' ? 'Day' : 'Hour', cell: (p) => when(p.t) },
        { title: 'Value', cell: (p) => p.value },
        { title: 'Requests', num: true, cell: (p) => num(p.requests) },
        { title: 'Tokens', num: true, cell: (p) => num(p.total_tokens) },
        { title: 'Cost', num: true, cell: (p) => cost(p.cost), },
      ], data.series, { class: 'series' })),
    );
  }

  // --- start --------------------------------------------------------------------------------

  function setUpTheme() {
    const saved = localStorage.getItem('floopy-theme');
    if (saved) document.documentElement.dataset.theme = saved;
    const button = $('#theme');
    if (!button) return;
    button.addEventListener('click', () => {
      const dark = document.documentElement.dataset.theme
        ? document.documentElement.dataset.theme === 'dark'
        : matchMedia('(prefers-color-scheme: dark)').matches;
      const next = dark ? 'light' : 'dark';
      document.documentElement.dataset.theme = next;
      localStorage.setItem('floopy-theme', next);
    });
  }

  function setUpPanel() {
    const panel = $('#panel');
    if (!panel) return;
    $('#panel-close').addEventListener('click', () => closePanel());
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closePanel();
    });
    document.addEventListener('click', (event) => {
      const opener = event.target.closest('[data-request]');
      if (!opener || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      openRequest(opener.dataset.request);
    });
    window.addEventListener('popstate', () => location.reload());
  }

  const PAGES = { overview, requests, sessions, users, properties };
  setUpTheme();
  if (PAGES[page]) {
    setUpFilters();
    setUpPanel();
    PAGES[page]().then(() => document.body.classList.add('ready')).catch(failed);
  }
})();
