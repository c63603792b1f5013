// eventfold dashboard: refreshes from the query API (relative URLs, same origin) whenever the
// server-sent progress stream says the folded offsets moved (at most once a second), and
// polls every 2 s instead while the stream is not connected. Draws the page. Vanilla JS, no build step, no dependencies. All windows are event time: the
// "latest minute" is the newest events-per-minute window in the data and "now" is the newest
// event folded, never the browser clock (which only serves for lag and watermark age).
(function () {
  "use strict";

  const POLL_MS = 2000;
  const HIDDEN_POLL_MS = 10000;
  const LIVE_POLL_MS = 15000; // a safety refresh while the stream pushes changes
  const MIN_REFRESH_GAP_MS = 1000;
  const REQUEST_TIMEOUT_MS = 8000;
  // The read token the page was opened with (`/?token=…`), sent with every API call.
  const READ_TOKEN = new URLSearchParams(window.location.search).get("token");
  const MINUTE = 60000;
  const CHART_MINUTES = 30;
  const REVENUE_MINUTES = 60;
  const ACTIVE_SESSION_MS = 30 * MINUTE;
  const SESSION_PAGE = 1000;
  const MAX_SESSION_PAGES = 10;
  const IDLE_STALE_MS = 60000;
  const FUNNEL = [
    ["page_view", "Page view"],
    ["click", "Click"],
    ["add_to_cart", "Add to cart"],
    ["purchase", "Purchase"],
  ];
  const TYPE_ORDER = ["page_view", "click", "search", "play", "pause", "skip", "add_to_cart", "purchase", "unknown"];
  const TYPE_LABEL = {
    page_view: "Page view", click: "Click", search: "Search", play: "Play", pause: "Pause",
    skip: "Skip", add_to_cart: "Add to cart", purchase: "Purchase", unknown: "Unknown",
  };

  const state = {
    pipelines: [],
    pipeline: null, // the chosen pipeline's description from /v1/pipelines
    everOk: false,
    lastOkAt: 0, // browser time of the last poll that reached the API
    lastChangeAt: 0, // browser time the folded offsets last moved
    lastFolded: null,
    pollCount: 0,
    timer: null,
    polling: false,
    again: false, // the stream announced a change during a poll: refresh once it ends
    stream: null, // the EventSource of the chosen pipeline's progress
    streamFor: null,
    live: false, // the stream is open: changes are pushed, polling is only a safety net
    apiDown: false, // the last poll could not reach the API at all
    errors: [],
    data: emptyData(),
  };

  function emptyData() {
    return {
      fresh: null, refNow: null, anchor: null, events: null, users: null, revenue: null,
      top: null, funnel: null, play: null, sessions: null,
    };
  }

  // ---------- helpers ----------

  const $ = (id) => document.getElementById(id);
  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);

  function fmtInt(n) {
    return isNum(n) ? Math.round(n).toLocaleString() : "—";
  }
  function fmtMoney(n) {
    if (!isNum(n)) return "—";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toLocaleString(undefined, { maximumFractionDigits: 2 }) + "M";
    return n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function fmtCompact(n) {
    if (!isNum(n)) return "";
    const a = Math.abs(n);
    if (a >= 1e6) return +(n / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return +(n / 1e3).toFixed(1) + "k";
    return String(+n.toFixed(2));
  }
  function fmtPct(x) {
    if (!isNum(x)) return "—";
    const p = x * 100;
    return (p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + "%";
  }
  function fmtSecs(s) {
    if (!isNum(s)) return "—";
    if (s < 10) return s.toFixed(1);
    return Math.round(s).toLocaleString();
  }
  function fmtAge(ms) {
    if (!isNum(ms)) return "—";
    const s = ms / 1000;
    if (s < 0) return "0 s";
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 3600) return Math.round(s).toLocaleString() + " s";
    const h = Math.floor(s / 3600);
    return h + " h " + Math.round((s - h * 3600) / 60) + " m";
  }
  const two = (n) => String(n).padStart(2, "0");
  function hhmm(ms) {
    const d = new Date(ms);
    return two(d.getHours()) + ":" + two(d.getMinutes());
  }
  function hhmmss(ms) {
    const d = new Date(ms);
    return hhmm(ms) + ":" + two(d.getSeconds());
  }
  function typeClass(t) {
    return TYPE_ORDER.includes(t) ? "t-" + t : "t-other";
  }
  function typeLabel(t) {
    if (t === null || t === undefined) return "(none)";
    return TYPE_LABEL[t] || String(t);
  }
  function setNum(el, value, text) {
    el.dataset.value = isNum(value) ? String(value) : "";
    el.innerHTML = text;
  }
  function niceScale(max, ticks) {
    if (!(max > 0)) return { max: 1, step: 1 };
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    if (max >= ticks && step < 1) step = 1;
    return { max: Math.ceil(max / step - 1e-9) * step, step };
  }

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, params) {
    const query = params
      ? "?" + Object.entries(params)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v))
        .join("&")
      : "";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      const headers = { Accept: "application/json" };
      if (READ_TOKEN) headers.Authorization = "Bearer " + READ_TOKEN;
      response = await fetch(path + query, {
        signal: controller.signal,
        cache: "no-store",
        headers,
      });
    } catch (e) {
      throw new ApiError(e && e.name === "AbortError" ? "request timed out" : "network error", 0);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        const body = await response.json();
        if (body && body.message) message = body.message;
      } catch (_) { /* not JSON */ }
      throw new ApiError(message, response.status);
    }
    return response.json();
  }

  // ---------- the pipeline and its aggregates ----------

  const windowSize = (a, fallback) => (a && a.window && isNum(a.window.size_ms) ? a.window.size_ms : fallback);
  const groupedBy = (a, field) => Array.isArray(a.group_by) && a.group_by.length === 1 && a.group_by[0] === field;
  const ungrouped = (a) => !a.group_by || a.group_by.length === 0;
  const tumbling = (a) => a.window && a.window.type === "tumbling";

  // Each panel's aggregate: the shipped name first, else the first aggregate of that shape.
  const ROLES = {
    events: ["events_per_minute", (a) => a.aggregate === "count" && groupedBy(a, "event_type") && tumbling(a)],
    users: ["unique_users_per_minute", (a) => a.aggregate === "count_distinct" && a.field === "user_id" && ungrouped(a) && tumbling(a)],
    revenue: ["revenue_per_minute", (a) => a.aggregate === "sum" && ungrouped(a) && tumbling(a)],
    top: ["top_items_5m", (a) => a.aggregate === "top_k" && ungrouped(a)],
    funnel: ["funnel_per_minute", (a) => a.aggregate === "count_distinct" && a.field === "session_id" && groupedBy(a, "event_type") && tumbling(a)],
    play: ["play_seconds_percentiles", (a) => a.aggregate === "percentiles" && ungrouped(a) && tumbling(a)],
  };
  function aggregateFor(role) {
    const list = (state.pipeline && state.pipeline.aggregates) || [];
    const [name, shape] = ROLES[role];
    return list.find((a) => a.name === name) || list.find(shape) || null;
  }
  function hasSessions() {
    const list = (state.pipeline && state.pipeline.projections) || [];
    return list.some((p) => p.kind === "session");
  }

  async function loadPipelines() {
    const body = await api("v1/pipelines");
    state.pipelines = Array.isArray(body.pipelines) ? body.pipelines : [];
    const wanted = new URLSearchParams(location.search).get("pipeline");
    const current = state.pipeline && state.pipeline.name;
    const pick =
      state.pipelines.find((p) => p.name === current) ||
      state.pipelines.find((p) => p.name === wanted) ||
      state.pipelines.find((p) => p.name === "interactions") ||
      state.pipelines[0] ||
      null;
    state.pipeline = pick;
    const select = $("pipeline-select");
    select.innerHTML = state.pipelines.length
      ? state.pipelines.map((p) => `<option value="${esc(p.name)}">${esc(p.name)}</option>`).join("")
      : `<option value="">no pipelines</option>`;
    if (pick) select.value = pick.name;
    select.disabled = state.pipelines.length < 2;
  }

  // ---------- one poll ----------

  async function aggregate(role, from) {
    const a = aggregateFor(role);
    if (!a) return { missing: true, windows: [] };
    const p = encodeURIComponent(state.pipeline.name);
    const body = await api(`v1/pipelines/${p}/aggregates/${encodeURIComponent(a.name)}`, { from });
    return { spec: a, windows: Array.isArray(body.windows) ? body.windows : [] };
  }

  async function sessions(refNow) {
    if (!hasSessions()) return { missing: true };
    const path = `v1/pipelines/${encodeURIComponent(state.pipeline.name)}/sessions`;
    const first = await api(path, { limit: SESSION_PAGE, offset: 0 });
    const total = first.sessions.total;
    let items = first.sessions.items;
    const pages = Math.min(Math.ceil(total / SESSION_PAGE), MAX_SESSION_PAGES);
    if (pages > 1) {
      const rest = await Promise.all(
        Array.from({ length: pages - 1 }, (_, i) => api(path, { limit: SESSION_PAGE, offset: (i + 1) * SESSION_PAGE })),
      );
      for (const page of rest) items = items.concat(page.sessions.items);
    }
    const since = refNow - ACTIVE_SESSION_MS;
    let active = 0;
    let converted = 0;
    for (const s of items) {
      if (s.end_ms >= since) {
        active += 1;
        if (s.converted) converted += 1;
      }
    }
    return { total, scanned: items.length, active, converted, pages };
  }

  function topicPartitions(fresh) {
    const parts = Array.isArray(fresh.partitions) ? fresh.partitions : [];
    const topic = state.pipeline && state.pipeline.topic;
    const mine = parts.filter((p) => p.topic === topic);
    return mine.length ? mine : parts;
  }

  async function poll() {
    if (state.polling) return;
    state.polling = true;
    const started = Date.now();
    const errors = [];
    try {
      if (!state.pipeline) await loadPipelines();
      if (!state.pipeline) {
        errors.push("no pipeline is configured on this query API");
        markReachable();
        return;
      }
      if (!state.stream || state.streamFor !== state.pipeline.name) connectStream();
      const fresh = await api("v1/freshness");
      markReachable();
      state.apiDown = false;
      const parts = topicPartitions(fresh);
      const eventTimes = parts.map((p) => p.max_event_ms).filter(isNum);
      const refNow = eventTimes.length ? Math.max(...eventTimes) : null;
      const folded = parts.reduce((sum, p) => sum + (p.last_offset + 1 || 0), 0);
      if (folded !== state.lastFolded) {
        state.lastFolded = folded;
        state.lastChangeAt = Date.now();
      }
      const d = state.data;
      d.fresh = fresh;
      d.refNow = refNow;
      if (refNow !== null) {
        const base = Math.floor(refNow / MINUTE) * MINUTE;
        const from = base - (REVENUE_MINUTES + 5) * MINUTE;
        const wantSessions = state.pollCount % 5 === 0 || !d.sessions || d.sessions.pages <= 1;
        const jobs = {
          events: aggregate("events", from),
          users: aggregate("users", base - (CHART_MINUTES + 2) * MINUTE),
          revenue: aggregate("revenue", from),
          top: aggregate("top", base - 12 * MINUTE),
          funnel: aggregate("funnel", base - (CHART_MINUTES + 2) * MINUTE),
          play: aggregate("play", base - 40 * MINUTE),
          sessions: wantSessions ? sessions(refNow) : Promise.resolve(d.sessions),
        };
        const names = Object.keys(jobs);
        const results = await Promise.allSettled(Object.values(jobs));
        results.forEach((r, i) => {
          if (r.status === "fulfilled") {
            d[names[i]] = r.value;
          } else {
            errors.push(`${names[i]}: ${r.reason && r.reason.message}`);
            if (r.reason && r.reason.status === 404) state.pipeline = null; // reload the list
          }
        });
      }
      state.pollCount += 1;
    } catch (e) {
      errors.push(e && e.message ? e.message : String(e));
      state.apiDown = true;
      if (e && e.status === 404) state.pipeline = null;
    } finally {
      state.polling = false;
      state.errors = errors;
      render(errors);
      const period = state.again ? MIN_REFRESH_GAP_MS : document.hidden ? HIDDEN_POLL_MS : state.live ? LIVE_POLL_MS : POLL_MS;
      state.again = false;
      schedule(Math.max(0, period - (Date.now() - started)));
    }
  }

  // The server-sent progress of the chosen pipeline: each `progress` event means the folded
  // offsets moved. If EventSource is missing or the stream closes, polling takes over (and
  // the next poll opens a new stream).
  function connectStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
    state.streamFor = null;
    state.live = false;
    if (typeof EventSource !== "function" || !state.pipeline) return;
    const name = state.pipeline.name;
    const tokenQuery = READ_TOKEN ? "?token=" + encodeURIComponent(READ_TOKEN) : "";
    const stream = new EventSource(`v1/pipelines/${encodeURIComponent(name)}/stream${tokenQuery}`);
    state.stream = stream;
    state.streamFor = name;
    stream.addEventListener("open", () => {
      state.live = true;
      renderStatus(state.errors);
    });
    stream.addEventListener("progress", (e) => {
      state.live = true;
      let parts = [];
      try {
        parts = JSON.parse(e.data).partitions || [];
      } catch (_) { /* refresh anyway */ }
      const folded = parts.reduce((sum, p) => sum + (p.last_offset + 1 || 0), 0);
      if (folded !== state.lastFolded) refreshSoon();
    });
    stream.addEventListener("error", () => {
      state.live = false;
      if (stream.readyState === EventSource.CLOSED && state.stream === stream) {
        state.stream = null;
        state.streamFor = null;
      }
      renderStatus(state.errors);
      refreshSoon();
    });
  }

  function refreshSoon() {
    if (state.polling) state.again = true;
    else schedule(0);
  }

  function markReachable() {
    state.everOk = true;
    state.lastOkAt = Date.now();
  }

  function schedule(delay) {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, delay);
  }

  // ---------- derived figures ----------

  // Sums a grouped, windowed aggregate into {start → {group → value}}.
  function byStart(windows) {
    const map = new Map();
    for (const w of windows || []) {
      if (!isNum(w.value)) continue;
      const key = Array.isArray(w.group) && w.group.length ? w.group[0] : null;
      let row = map.get(w.start_ms);
      if (!row) map.set(w.start_ms, (row = new Map()));
      row.set(key, (row.get(key) || 0) + w.value);
    }
    return map;
  }
  const rowTotal = (row) => (row ? [...row.values()].reduce((a, b) => a + b, 0) : 0);

  // ---------- rendering ----------

  function render(errors) {
    renderStatus(errors);
    const d = state.data;
    if (!d.fresh) return;
    const events = d.events && !d.events.missing ? d.events : null;
    const size = windowSize(events && events.spec, MINUTE);
    const eventRows = byStart(events ? events.windows : []);
    const starts = [...eventRows.keys()];
    // The newest events-per-minute window: "the latest minute", in event time.
    d.anchor = starts.length ? Math.max(...starts) : d.refNow !== null ? Math.floor(d.refNow / size) * size : null;
    renderKpis(eventRows, size);
    renderChart(eventRows, size);
    renderTop();
    renderFunnel();
    renderPlay();
    renderFreshness();
  }

  function renderStatus(errors) {
    const el = $("status");
    const now = Date.now();
    const d = state.data;
    const failing = errors.length > 0;
    let status;
    let title;
    if (!state.everOk) {
      status = failing ? "offline" : "connecting";
      title = failing ? "The query API has not answered yet." : "";
    } else if (state.apiDown) {
      status = "stale";
      title = "The query API stopped answering; showing the last values.";
    } else if (state.lastChangeAt && now - state.lastChangeAt > IDLE_STALE_MS) {
      status = "stale";
      title = `No new events folded since ${hhmmss(state.lastChangeAt)} (browser time).`;
    } else {
      status = state.live ? "live" : "connected";
      title = state.live ? "Live: the server pushes each change (server-sent events)." : "Polling every 2 s.";
    }
    el.dataset.state = status;
    el.dataset.transport = state.live ? "stream" : "polling";
    $("poll-note").textContent = state.live
      ? "Live: refreshes when new events are folded (server-sent events)."
      : "Refreshes every 2 s.";
    el.textContent = status === "offline" ? "disconnected" : status;
    el.title = title;

    if (d.refNow !== null && d.refNow !== undefined) {
      $("as-of").textContent = hhmmss(d.refNow);
      $("as-of").title = new Date(d.refNow).toString() + " (newest event time folded)";
      const lag = now - d.refNow;
      const lagEl = $("lag");
      lagEl.textContent = fmtAge(lag);
      lagEl.dataset.value = String(Math.max(0, Math.round(lag)));
      lagEl.title = lag < 0 ? "The browser clock is behind the event times by " + fmtAge(-lag) : "";
    }
    if (d.fresh) {
      const parts = topicPartitions(d.fresh);
      const folded = parts.reduce((s, p) => s + (p.folded || 0), 0);
      $("folded-total").textContent = fmtInt(folded);
      $("folded-total").dataset.value = String(folded);
    }

    const banner = $("banner");
    if (failing) {
      banner.hidden = false;
      $("banner-text").textContent = !state.everOk
        ? "The query API cannot be reached."
        : state.apiDown
          ? "The query API cannot be reached — showing the last values received."
          : "Some figures could not be refreshed — showing the last values received.";
      const since = state.everOk ? ` Last update ${hhmmss(state.lastOkAt)} (${fmtAge(now - state.lastOkAt)} ago).` : "";
      const detail = errors.slice(0, 2).join(" · ");
      $("banner-detail").textContent = detail.charAt(0).toUpperCase() + detail.slice(1) + "." + since + " Retrying every 2 s.";
    } else {
      banner.hidden = true;
    }
  }

  function spark(values, opts) {
    const vals = values.map((v) => (isNum(v) ? v : 0));
    if (vals.length < 2) return "";
    const w = 110;
    const h = 30;
    const max = Math.max(...vals, 1e-9);
    const step = w / (vals.length - 1);
    const pts = vals.map((v, i) => [+(i * step).toFixed(1), +(h - 2 - (v / max) * (h - 4)).toFixed(1)]);
    const line = pts.map((p, i) => (i ? "L" : "M") + p[0] + " " + p[1]).join("");
    const area = line + `L${w} ${h}L0 ${h}Z`;
    const label = esc((opts && opts.label) || "trend");
    return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${label}"><path class="spark-area" d="${area}"/><path class="spark-line" vector-effect="non-scaling-stroke" d="${line}"/></svg>`;
  }

  function series(rows, anchor, size, count) {
    const out = [];
    for (let i = count - 1; i >= 0; i--) out.push(rowTotal(rows.get(anchor - i * size)));
    return out;
  }

  function renderKpis(eventRows, size) {
    const d = state.data;
    const A = d.anchor;
    if (A === null) return;
    const partial = d.refNow !== null && A + size > d.refNow;
    $("kpi-events-window").textContent = `· latest minute, ${hhmm(A)}`;
    // Sparklines end with the last complete minute, so a minute in progress never looks like a drop.
    const lastFull = partial ? A - size : A;
    const progress = partial ? `${Math.max(0, Math.floor((d.refNow - A) / 1000))} s in · ` : "";

    const evNow = rowTotal(eventRows.get(A));
    setNum($("kpi-events"), evNow, fmtInt(evNow));
    const evPrev = eventRows.get(A - size);
    $("kpi-events-delta").innerHTML = progress + (evPrev ? `prev. ${fmtInt(rowTotal(evPrev))}` : "");
    $("kpi-events-spark").innerHTML = spark(series(eventRows, lastFull, size, CHART_MINUTES), { label: "events per minute, last 30 min" });

    if (d.users && !d.users.missing) {
      const rows = byStart(d.users.windows);
      const u = rowTotal(rows.get(A));
      setNum($("kpi-users"), u, fmtInt(u));
      const prev = rows.get(A - size);
      $("kpi-users-delta").innerHTML = progress + (prev ? `prev. ${fmtInt(rowTotal(prev))}` : "");
      $("kpi-users-spark").innerHTML = spark(series(rows, lastFull, size, CHART_MINUTES), { label: "unique users per minute" });
    } else if (d.users && d.users.missing) {
      setNum($("kpi-users"), null, "n/a");
    }

    if (d.revenue && !d.revenue.missing) {
      const rsize = windowSize(d.revenue.spec, MINUTE);
      const rows = byStart(d.revenue.windows);
      const end = A + size; // the hour ending with the latest minute
      let total = 0;
      for (const [start, row] of rows) if (start >= end - REVENUE_MINUTES * MINUTE && start < end) total += rowTotal(row);
      total = Math.round(total * 100) / 100;
      setNum($("kpi-revenue"), total, fmtMoney(total));
      let purchases = 0;
      for (const [start, row] of eventRows) {
        if (start >= end - REVENUE_MINUTES * MINUTE && start < end) purchases += row.get("purchase") || 0;
      }
      $("kpi-revenue-note").innerHTML = purchases
        ? `${fmtInt(purchases)} purchases · avg ${fmtMoney(total / purchases)}`
        : "no purchases yet";
      const n = Math.round((REVENUE_MINUTES * MINUTE) / rsize);
      const lastRev = Math.floor((d.refNow !== null ? Math.min(A + size, d.refNow) : A + size) / rsize) * rsize - rsize;
      $("kpi-revenue-spark").innerHTML = spark(series(rows, lastRev, rsize, n), { label: "revenue per minute, last hour" });
    } else if (d.revenue && d.revenue.missing) {
      setNum($("kpi-revenue"), null, "n/a");
    }

    const s = d.sessions;
    if (s && !s.missing) {
      setNum($("kpi-sessions"), s.active, fmtInt(s.active));
      const conv = s.active ? ` · ${fmtPct(s.converted / s.active)} converted` : "";
      const scanned = s.scanned < s.total ? ` (first ${fmtInt(s.scanned)} scanned)` : "";
      $("kpi-sessions-note").innerHTML = `of ${fmtInt(s.total)} sessions${conv}${scanned}`;
    } else if (s && s.missing) {
      setNum($("kpi-sessions"), null, "n/a");
      $("kpi-sessions-note").textContent = "no sessions projection";
    }
  }

  function renderChart(rows, size) {
    const d = state.data;
    const box = $("events-chart");
    const legend = $("chart-legend");
    const A = d.anchor;
    if (A === null || rows.size === 0) {
      box.innerHTML = `<div class="empty">${d.events && d.events.missing ? "This pipeline has no per-type event count." : "No events in the last 30 minutes yet."}</div>`;
      legend.innerHTML = "";
      return;
    }
    const starts = [];
    for (let i = CHART_MINUTES - 1; i >= 0; i--) starts.push(A - i * size);
    const seen = new Set();
    for (const s of starts) for (const k of (rows.get(s) || new Map()).keys()) seen.add(k);
    const types = [...seen].sort((a, b) => {
      const ia = TYPE_ORDER.indexOf(a);
      const ib = TYPE_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || String(a).localeCompare(String(b));
    });
    legend.innerHTML = types
      .map((t) => `<span><i class="sw ${typeClass(t)}"></i>${esc(typeLabel(t))}</span>`)
      .join("");

    const W = Math.max(320, box.clientWidth || 600);
    const H = Math.max(160, box.clientHeight || 250);
    const m = { l: 40, r: 6, t: 8, b: 22 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const totals = starts.map((s) => rowTotal(rows.get(s)));
    const scale = niceScale(Math.max(...totals), 4);
    const y = (v) => m.t + ih - (v / scale.max) * ih;
    const slot = iw / starts.length;
    const bw = Math.max(2, slot * 0.72);
    let svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Events per minute by type, last 30 minutes">`;
    for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
      const yy = Math.round(y(v)) + 0.5;
      svg += `<line class="grid-line" x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}"/>`;
      svg += `<text class="axis-label" x="${m.l - 6}" y="${yy + 3.5}" text-anchor="end">${fmtCompact(v)}</text>`;
    }
    starts.forEach((s, i) => {
      const x = m.l + i * slot + (slot - bw) / 2;
      const row = rows.get(s) || new Map();
      const partial = d.refNow !== null && s + size > d.refNow;
      let acc = 0;
      svg += `<g${partial ? ' class="partial"' : ""}>`;
      for (const t of types) {
        const v = row.get(t) || 0;
        if (!v) continue;
        const y0 = y(acc);
        const y1 = y(acc + v);
        svg += `<rect class="seg ${typeClass(t)}" x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(0.5, y0 - y1).toFixed(1)}"/>`;
        acc += v;
      }
      svg += `</g>`;
      if (new Date(s).getMinutes() % 5 === 0 || i === starts.length - 1) {
        const lx = m.l + i * slot + slot / 2;
        if (i === starts.length - 1 || i < starts.length - 2) {
          svg += `<text class="axis-label" x="${lx.toFixed(1)}" y="${H - 6}" text-anchor="middle">${hhmm(s)}</text>`;
        }
      }
      svg += `<rect class="col-hit" data-i="${i}" x="${(m.l + i * slot).toFixed(1)}" y="${m.t}" width="${slot.toFixed(1)}" height="${ih}"/>`;
    });
    svg += `</svg>`;
    box.innerHTML = svg;
    box._chart = { starts, rows, types, size };
  }

  function chartTip(ev) {
    const box = $("events-chart");
    const tip = $("chart-tip");
    const target = ev.target;
    if (!box._chart || !target.classList || !target.classList.contains("col-hit")) {
      tip.hidden = true;
      return;
    }
    const { starts, rows, types, size } = box._chart;
    const s = starts[+target.dataset.i];
    const row = rows.get(s) || new Map();
    const partial = state.data.refNow !== null && s + size > state.data.refNow;
    let html = `<div class="tt-head">${hhmm(s)}–${hhmm(s + size)}${partial ? " · in progress" : ""}</div>`;
    for (const t of [...types].reverse()) {
      const v = row.get(t) || 0;
      html += `<div class="tt-row"><span><i class="sw ${typeClass(t)}"></i>${esc(typeLabel(t))}</span><span>${fmtInt(v)}</span></div>`;
    }
    html += `<div class="tt-row tt-total"><span>Total</span><span>${fmtInt(rowTotal(row))}</span></div>`;
    tip.innerHTML = html;
    tip.hidden = false;
    const card = box.parentElement.getBoundingClientRect();
    const r = target.getBoundingClientRect();
    let left = r.right - card.left + 8;
    if (left + tip.offsetWidth > card.width - 8) left = r.left - card.left - tip.offsetWidth - 8;
    tip.style.left = Math.max(8, left) + "px";
    tip.style.top = Math.max(8, ev.clientY - card.top - tip.offsetHeight / 2) + "px";
  }

  function renderTop() {
    const d = state.data;
    const list = $("top-items");
    const pill = $("top-window");
    if (!d.top) return;
    if (d.top.missing) {
      list.innerHTML = `<li class="empty">This pipeline has no top-k aggregate.</li>`;
      pill.textContent = "—";
      return;
    }
    const windows = d.top.windows.filter((w) => Array.isArray(w.value));
    if (!windows.length) {
      list.innerHTML = `<li class="empty">No page views yet.</li>`;
      pill.textContent = "—";
      return;
    }
    // The latest complete window (ended by the newest event time), else the newest one.
    const complete = windows.filter((w) => d.refNow !== null && w.end_ms <= d.refNow);
    const pool = complete.length ? complete : windows;
    const newest = Math.max(...pool.map((w) => w.start_ms));
    const chosen = pool.filter((w) => w.start_ms === newest);
    const entries = chosen.flatMap((w) => w.value).sort((a, b) => b.count - a.count || String(a.key).localeCompare(String(b.key)));
    const w0 = chosen[0];
    pill.textContent = `${hhmm(w0.start_ms)}–${hhmm(w0.end_ms)}${complete.length ? "" : " · in progress"}`;
    pill.title = complete.length ? "The latest complete window" : "No window has ended yet";
    const top = entries.slice(0, 10);
    const max = top.length ? top[0].count : 1;
    list.innerHTML = top.length
      ? top
        .map((e, i) => {
          const err = e.error ? `<small title="count may overestimate by up to ${fmtInt(e.error)}">±${fmtInt(e.error)}</small>` : "";
          return `<li data-testid="top-item" data-key="${esc(e.key)}" data-count="${e.count}"><span class="rank">${i + 1}</span><span class="key" title="${esc(e.key)}">${esc(e.key)}</span><span class="count" data-testid="top-item-count">${fmtInt(e.count)}${err}</span><span class="bar"><b style="width:${((e.count / max) * 100).toFixed(1)}%"></b></span></li>`;
        })
        .join("")
      : `<li class="empty">No page views in this window.</li>`;
  }

  function renderFunnel() {
    const d = state.data;
    const box = $("funnel");
    if (!d.funnel) return;
    if (d.funnel.missing) {
      box.innerHTML = `<div class="empty">This pipeline has no per-type distinct-session count.</div>`;
      return;
    }
    const size = windowSize(d.funnel.spec, MINUTE);
    const rows = byStart(d.funnel.windows);
    const A = d.anchor;
    const sums = new Map(FUNNEL.map(([t]) => [t, 0]));
    for (const [start, row] of rows) {
      if (A !== null && start > A - CHART_MINUTES * size && start <= A) {
        for (const [t] of FUNNEL) sums.set(t, sums.get(t) + (row.get(t) || 0));
      }
    }
    const first = sums.get(FUNNEL[0][0]);
    const max = Math.max(...sums.values(), 1);
    let prev = null;
    box.innerHTML = FUNNEL.map(([t, label], i) => {
      const v = sums.get(t);
      const pct = (v / max) * 100;
      const conv = i === 0 ? null : prev > 0 ? v / prev : null;
      prev = v;
      const inside = pct > 28;
      return `<div class="step" data-testid="funnel-step" data-step="${t}" data-value="${v}">
        <span class="step-name">${esc(label)}</span>
        <span class="step-bar"><b class="${typeClass(t)}" style="width:${pct.toFixed(1)}%"></b><span class="${inside ? "" : "outside"}" style="${inside ? "" : `left:calc(${pct.toFixed(1)}% + 8px)`}">${fmtInt(v)}</span></span>
        <span class="step-conv" data-testid="funnel-conversion">${i === 0 ? "" : fmtPct(conv)}<small>${i === 0 ? "entry" : "of previous"}</small></span>
      </div>`;
    }).join("");
    const last = sums.get(FUNNEL[FUNNEL.length - 1][0]);
    $("funnel-overall").textContent = first > 0 ? `${fmtPct(last / first)} overall` : "—";
  }

  function renderPlay() {
    const d = state.data;
    if (!d.play) return;
    const cells = {
      0.5: document.querySelector('[data-testid="play-p50"]'),
      0.9: document.querySelector('[data-testid="play-p90"]'),
      0.99: document.querySelector('[data-testid="play-p99"]'),
    };
    const chart = $("play-chart");
    if (d.play.missing) {
      chart.innerHTML = `<div class="empty">This pipeline has no percentiles aggregate.</div>`;
      return;
    }
    const size = windowSize(d.play.spec, 5 * MINUTE);
    const windows = d.play.windows
      .filter((w) => Array.isArray(w.value) && w.value.some((q) => isNum(q.value)))
      .sort((a, b) => a.start_ms - b.start_ms);
    if (!windows.length) {
      chart.innerHTML = `<div class="empty">No plays yet.</div>`;
      return;
    }
    const complete = windows.filter((w) => d.refNow !== null && w.end_ms <= d.refNow);
    const shown = complete.length ? complete[complete.length - 1] : windows[windows.length - 1];
    $("play-window").textContent = `${hhmm(shown.start_ms)}–${hhmm(shown.end_ms)}${complete.length ? "" : " · in progress"}`;
    const qv = (w, q) => {
      const hit = w.value.find((x) => Math.abs(x.q - q) < 1e-9);
      return hit && isNum(hit.value) ? hit.value : null;
    };
    for (const q of [0.5, 0.9, 0.99]) {
      const v = qv(shown, q);
      setNum(cells[q], v, isNum(v) ? `${fmtSecs(v)}<span class="unit">s</span>` : "—");
    }
    // Trend over the last 30 minutes of windows.
    const A = d.anchor !== null ? d.anchor : windows[windows.length - 1].start_ms;
    const recent = windows.filter((w) => w.start_ms > A - CHART_MINUTES * MINUTE);
    if (recent.length < 2) {
      chart.innerHTML = "";
      return;
    }
    const W = Math.max(200, chart.clientWidth || 300);
    const H = Math.max(80, chart.clientHeight || 112);
    const m = { l: 34, r: 6, t: 6, b: 18 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const t0 = recent[0].start_ms;
    const t1 = recent[recent.length - 1].start_ms;
    const x = (t) => m.l + (t1 === t0 ? iw / 2 : ((t - t0) / (t1 - t0)) * iw);
    const all = recent.flatMap((w) => [0.5, 0.9, 0.99].map((q) => qv(w, q))).filter(isNum);
    const scale = niceScale(Math.max(...all, 1), 3);
    const y = (v) => m.t + ih - (v / scale.max) * ih;
    let svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Play time percentiles per ${size / MINUTE} minutes">`;
    for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
      const yy = Math.round(y(v)) + 0.5;
      svg += `<line class="grid-line" x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}"/><text class="axis-label" x="${m.l - 5}" y="${yy + 3.5}" text-anchor="end">${fmtCompact(v)}s</text>`;
    }
    for (const [q, cls] of [[0.99, "99"], [0.9, "90"], [0.5, "50"]]) {
      const pts = recent.map((w) => [x(w.start_ms), qv(w, q)]).filter((p) => isNum(p[1]));
      if (!pts.length) continue;
      svg += `<path class="line q${cls}" d="${pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + y(p[1]).toFixed(1)).join("")}"/>`;
      const lp = pts[pts.length - 1];
      svg += `<circle class="dot${cls}" cx="${lp[0].toFixed(1)}" cy="${y(lp[1]).toFixed(1)}" r="2.6"/>`;
    }
    svg += `<text class="axis-label" x="${m.l}" y="${H - 4}">${hhmm(t0)}</text><text class="axis-label" x="${W - m.r}" y="${H - 4}" text-anchor="end">${hhmm(t1)}</text>`;
    chart.innerHTML = svg + `</svg>`;
  }

  function renderFreshness() {
    const d = state.data;
    const body = $("freshness-body");
    const parts = topicPartitions(d.fresh).slice().sort((a, b) => String(a.topic).localeCompare(String(b.topic)) || a.partition - b.partition);
    const marks = new Map((d.fresh.watermarks || []).map((w) => [w.topic + "/" + w.partition, w.watermark_ms]));
    if (!parts.length) {
      body.innerHTML = `<tr><td colspan="6" class="empty">No partition folded yet.</td></tr>`;
      $("fresh-summary").textContent = "—";
      return;
    }
    const now = Date.now();
    const topics = [...new Set(parts.map((p) => p.topic))];
    const oneTopic = topics.length === 1;
    $("fresh-topic").textContent = oneTopic ? `· topic ${topics[0]}` : "· per partition";
    let worst = null;
    let lateTotal = 0;
    let dlqTotal = 0;
    body.innerHTML = parts
      .map((p) => {
        const wm = marks.get(p.topic + "/" + p.partition);
        const age = isNum(wm) ? now - wm : null;
        if (isNum(age)) worst = worst === null ? age : Math.max(worst, age);
        lateTotal += p.late || 0;
        dlqTotal += p.dead_lettered || 0;
        const ageClass = !isNum(age) ? "" : age < 15000 ? "ok" : age < 60000 ? "slow" : "old";
        const cnt = (v, bad) => `<td class="num ${v ? bad : "zero"}">${fmtInt(v || 0)}</td>`;
        const rowTitle = `${p.topic} / ${p.partition}: ${fmtInt(p.read)} read, ${fmtInt(p.duplicates)} duplicate(s)`;
        const name = oneTopic ? `${p.partition}` : `${esc(p.topic)}<small> / ${p.partition}</small>`;
        return `<tr data-testid="freshness-row" data-topic="${esc(p.topic)}" data-partition="${p.partition}" title="${esc(rowTitle)}">
          <td class="part">${name}</td>
          <td class="num" data-testid="fresh-offset">${fmtInt(p.last_offset)}</td>
          <td class="num" data-testid="fresh-folded">${fmtInt(p.folded)}</td>
          ${cnt(p.late, "nonzero-warn")}
          ${cnt(p.dead_lettered, "nonzero-bad")}
          <td class="num" data-testid="fresh-watermark-age" data-value="${isNum(age) ? Math.max(0, Math.round(age / 1000)) : ""}"><span class="age ${ageClass}" title="${isNum(wm) ? "watermark " + esc(new Date(wm).toLocaleString()) : "no watermark yet"}">${isNum(age) ? fmtAge(age) : "—"}</span></td>
        </tr>`;
      })
      .join("");
    const bits = [`${parts.length} partition${parts.length === 1 ? "" : "s"}`];
    if (lateTotal) bits.push(`${fmtInt(lateTotal)} late`);
    if (dlqTotal) bits.push(`${fmtInt(dlqTotal)} dead-lettered`);
    $("fresh-summary").textContent = bits.join(" · ");
    $("fresh-summary").title = worst !== null ? "oldest watermark " + fmtAge(worst) : "";
  }

  // ---------- start ----------

  function start() {
    $("pipeline-select").addEventListener("change", (e) => {
      const name = e.target.value;
      const next = state.pipelines.find((p) => p.name === name);
      if (!next) return;
      state.pipeline = next;
      state.data = emptyData();
      state.lastFolded = null;
      const url = new URL(location.href);
      url.searchParams.set("pipeline", name);
      history.replaceState(null, "", url.pathname + url.search + url.hash);
      schedule(0);
    });
    const box = $("events-chart");
    box.addEventListener("mousemove", chartTip);
    box.addEventListener("mouseleave", () => { $("chart-tip").hidden = true; });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => render(state.errors), 150);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
