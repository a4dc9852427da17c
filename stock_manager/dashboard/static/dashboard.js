// Polls /api/snapshot every 2 s and redraws.  Data only ever enters the page as textContent or SVG
// attributes, never as HTML, so nothing in a table row or event message can run as script.
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const KST_MS = 9 * 3600 * 1000;

const $ = (id) => document.getElementById(id);
const won = (v, sign = true) => v == null ? "-" :
  (sign && v > 0 ? "+" : "") + Math.round(v).toLocaleString("en-US");
const price = (v) => v == null ? "-" : Number(v).toLocaleString("en-US", {maximumFractionDigits: 2});
const cls = (v) => v > 0 ? "pos" : v < 0 ? "neg" : "";
const age = (s) => s == null ? "-" : s < 120 ? s.toFixed(1) + "s" : s < 7200 ? (s / 60).toFixed(0) + "m" :
  (s / 3600).toFixed(1) + "h";
const kstTime = (iso) => iso ? new Date(Date.parse(iso) + KST_MS).toISOString().slice(11, 19) : "-";

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const [text, className] = Array.isArray(c) ? c : [c, ""];
    tr.appendChild(el("td", text, className));
  }
  return tr;
}

function fill(tbody, rows, empty, span) {
  tbody.replaceChildren(...rows);
  if (!rows.length) {
    const td = el("td", empty, "muted");
    td.colSpan = span;
    const tr = document.createElement("tr");
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

function renderHeader(s) {
  const st = s.trading_state || {};
  $("mode").textContent = s.mode || "-";
  const badge = $("trading-state");
  badge.textContent = st.state || "?";
  badge.className = "badge state " + (st.state || "");
  $("trading-reason").textContent = st.reason || "";
  // two clocks: the market's (the simulator's in sim mode, any day at any speed) and the wall
  // clock; every time on the page says which one it is
  $("clock").textContent = "market time " + kstTime(st.market_now) + " KST";
  const banner = $("alerts-now");
  const conds = s.conditions || [];
  banner.hidden = !conds.length;
  banner.replaceChildren(...conds.map((c) => el("div", c.kind + ": " + c.message)));
}

function renderServices(s) {
  fill($("services-body"), (s.services || []).map((x) => row([
    x.service, [x.state, x.state === "alive" ? "alive" : x.state === "down" ? "down" : "muted"],
    x.alive_instances + "/" + x.instances, [age(x.beat_age_s), "num"], x.newest_pid ?? "-",
  ])), "no heartbeats yet", 5);
  const p = s.prices || {};
  // only ~41 symbols stream and the rest are polled, so "stale" across the universe is normal:
  // freshness is judged on the symbols a decision rests on, the rest is coverage
  const stale = (s.price_watched || []).filter((w) => !w.fresh).map((w) => w.symbol);
  $("prices-line").textContent = "prices that matter (held, locked, candidates, watch list): " +
    (p.watched_fresh ?? 0) + " of " + (p.watched ?? 0) + " fresh" +
    (stale.length ? " · STALE " + stale.slice(0, 8).join(", ") : "") +
    (p.market_open === false ? " · market closed" : "") +
    " · coverage " + (p.symbols ?? 0) + " of " + (p.universe ?? 0) + " symbols priced, " + (p.fresh ?? 0) +
    " fresh now · websocket " + (p.ws_connected == null ? "-" : p.ws_connected ? "up" : "down");
  const lat = (s.latency || []).find((r) => r.window_name === "1h");
  $("latency-line").textContent = lat && lat.orders ?
    "intent → broker ack (1h, " + lat.submitted + " orders): p50 " + Math.round(lat.submit_p50_ms ?? 0) +
    " ms · p90 " + Math.round(lat.submit_p90_ms ?? 0) + " ms · p99 " + Math.round(lat.submit_p99_ms ?? 0) + " ms" :
    "intent → broker ack: no orders in the last hour";
}

function renderPositions(s) {
  const rows = (s.positions || []).map((p) => {
    const tr = row([
      p.symbol, p.name || "", [p.qty.toLocaleString("en-US"), "num"], [price(p.avg_price), "num"],
      [price(p.price), "num"], [won(p.market_value, false), "num"],
      [won(p.unrealized_net), "num " + cls(p.unrealized_net)],
      [p.unrealized_pct == null ? "-" : p.unrealized_pct.toFixed(2), "num " + cls(p.unrealized_pct)],
      [p.price_fresh ? "fresh" : "STALE", p.price_fresh ? "alive" : "stale"],
    ]);
    tr.className = "position-row";
    tr.dataset.symbol = p.symbol;
    return tr;
  });
  $("positions-count").textContent = "(" + rows.length + ")";
  fill($("positions-body"), rows, "no open positions", 9);
}

function renderOrders(s) {
  const oo = s.open_orders || {};
  const rows = (oo.rows || []).map((o) => row([
    o.order_id, o.symbol, [o.side, o.side === "BUY" ? "pos" : "neg"], [o.filled_qty + "/" + o.qty, "num"],
    [o.order_type === "MKT" ? "MKT" : price(o.limit_price), "num"], o.status, [age(o.age_s), "num"],
  ]));
  $("orders-count").textContent = "(" + (oo.count ?? 0) + ")";
  fill($("orders-body"), rows, "no open orders", 7);
  const oi = s.open_intents || {};
  $("intents-line").textContent = "open intents: " + (oi.count ?? 0) +
    (oi.count ? " · oldest " + age(oi.oldest_age_s) : "");
}

function renderList(ul, items, empty) {
  ul.replaceChildren(...items.map((e) => {
    const li = el("li", null, e.level || "");
    li.appendChild(el("span", (e.market_ts ? kstTime(e.market_ts) : kstTime(e.ts) + " wall") + " ", "muted"));
    li.appendChild(el("b", e.kind + " "));
    if (e.repeats > 1) {  // a run of the same event (a retried liquidation) is one line
      const since = e.first_market_ts ? kstTime(e.first_market_ts) : kstTime(e.first_ts) + " wall";
      li.appendChild(el("span", "×" + e.repeats + " since " + since + " ", "repeats"));
    }
    li.appendChild(el("span", (e.service ? "(" + e.service + ") " : "") + (e.message || "")));
    return li;
  }));
  if (!items.length) ul.appendChild(el("li", empty, "muted"));
}

function renderPnl(s) {
  const p = s.pnl || {};
  $("trade-date").textContent = p.trade_date || "";
  $("report-link").href = p.trade_date ? "/report?date=" + encodeURIComponent(p.trade_date) : "/report";
  const total = $("pnl-total");
  total.textContent = won(p.total);
  total.className = "big " + cls(p.total);
  $("pnl-realized").textContent = won(p.realized);
  $("pnl-realized").className = cls(p.realized);
  $("pnl-unrealized").textContent = won(p.unrealized_net);
  $("pnl-unrealized").className = cls(p.unrealized_net);
  $("pnl-trips").textContent = (p.round_trips ?? 0) + " (" + (p.wins ?? 0) + "W / " + (p.losses ?? 0) + "L)";
  $("pnl-fills").textContent = p.fills ?? 0;
  $("pnl-costs").textContent = won((p.fees || 0) + (p.taxes || 0), false);
  drawChart($("pnl-chart"), s.pnl_series || [], p, (s.trading_state || {}).market_now);
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = String(text);
  return e;
}

// Minutes since KST midnight of a timestamp.
const kstMinutes = (iso) => ((Date.parse(iso) + KST_MS) % 86400000) / 60000;

function drawChart(chart, series, pnl, marketNow) {
  const W = 900, H = 220, L = 64, R = 12, T = 12, B = 24;
  const pts = series.map((f) => ({x: kstMinutes(f.ts), y: f.cum_realized, side: f.side}));
  const nowX = marketNow ? kstMinutes(marketNow) : null;
  const endY = (pnl.realized ?? 0) + (pnl.unrealized_net ?? 0);
  let x0 = 9 * 60, x1 = 15 * 60 + 30;  // the regular session, widened to whatever happened outside it
  for (const p of pts) { x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); }
  if (nowX != null && nowX >= x0 - 60) x1 = Math.max(x1, Math.min(nowX, 24 * 60));
  const ys = [0, endY, ...pts.map((p) => p.y)];
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1) { y0 -= 1000; y1 += 1000; }
  const pad = (y1 - y0) * 0.1; y0 -= pad; y1 += pad;
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);

  const parts = [];
  for (let h = Math.ceil(x0 / 60) * 60; h <= x1; h += 60) {
    parts.push(svg("line", {class: "grid", x1: sx(h), x2: sx(h), y1: T, y2: H - B}));
    parts.push(svg("text", {class: "axis", x: sx(h), y: H - 6, "text-anchor": "middle"},
      String(Math.floor(h / 60)).padStart(2, "0") + ":00"));
  }
  for (const v of yTicks(y0, y1)) {  // round values, so the scale reads at a glance
    if (v !== 0) parts.push(svg("line", {class: "grid", x1: L, x2: W - R, y1: sy(v), y2: sy(v)}));
    parts.push(svg("text", {class: "axis ytick", x: L - 6, y: sy(v) + 4, "text-anchor": "end"},
      v === 0 ? "0" : won(v)));
  }
  parts.push(svg("line", {class: "zero", x1: L, x2: W - R, y1: sy(0), y2: sy(0)}));

  // realized PnL steps at each fill, then a dashed line to realized + unrealized now
  let d = "M" + sx(x0) + "," + sy(0);
  let last = 0;
  for (const p of pts) { d += " H" + sx(p.x) + " V" + sy(p.y); last = p.y; }
  const endX = nowX != null ? Math.min(Math.max(nowX, pts.length ? pts[pts.length - 1].x : x0), x1) : x1;
  d += " H" + sx(endX);
  parts.push(svg("path", {class: "series", d: d, "data-points": pts.length}));
  parts.push(svg("path", {class: "now", d: "M" + sx(endX) + "," + sy(last) + " V" + sy(endY)}));
  for (const p of pts) {
    parts.push(svg("circle", {class: p.side === "BUY" ? "buy" : "sell", cx: sx(p.x), cy: sy(p.y), r: 3.5}));
  }
  parts.push(...legend(L + 8, T + 4));
  chart.replaceChildren(...parts);
  chart.dataset.points = String(pts.length);
}

// About five round steps (1, 2 or 5 x 10^k won) between lo and hi, zero among them when in range.
function yTicks(lo, hi) {
  const raw = (hi - lo) / 5;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(Math.round(v));
  return out;
}

// What the marks mean: fills are dots (red a buy, blue a sell, the Korean colours), the line is
// realized PnL and the dashed tail adds what the open positions would make if sold now.
function legend(x, y) {
  const items = [["buy", "buy fill"], ["sell", "sell fill"], ["series", "realized"], ["now", "+ unrealized now"]];
  const g = svg("g", {class: "legend"});
  let at = x;
  for (const [kind, label] of items) {
    if (kind === "buy" || kind === "sell") g.appendChild(svg("circle", {class: kind + " key", cx: at + 4, cy: y + 6, r: 3.5}));
    else g.appendChild(svg("path", {class: kind, d: "M" + at + "," + (y + 6) + " h14"}));
    g.appendChild(svg("text", {class: "axis", x: at + 18, y: y + 10}, label));
    at += 26 + label.length * 6.2;
  }
  return [g];
}

// Marks any table wider than its card (data-overflow on <body>), which the layout must never do.
function checkFit() {
  const over = [...document.querySelectorAll("table")].filter((t) => {
    const box = t.closest(".scroll") || t.parentElement;
    return t.scrollWidth > box.clientWidth + 1;
  }).map((t) => t.id || t.querySelector("tbody")?.id || "table");
  document.body.dataset.overflow = over.join(" ");
}

async function refresh() {
  const conn = $("conn");
  try {
    const resp = await fetch("/api/snapshot", {cache: "no-store"});
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const s = await resp.json();
    renderHeader(s);
    renderPnl(s);
    renderServices(s);
    renderPositions(s);
    renderOrders(s);
    renderList($("corrections"), s.corrections || [], "none");
    renderList($("events"), s.events || [], "no events yet");
    conn.textContent = "updated " + kstTime(s.generated_ts) + " wall clock";
    conn.className = "badge ok";
    checkFit();
    document.body.dataset.loaded = "1";
  } catch (e) {
    conn.textContent = "disconnected";
    conn.className = "badge bad";
  }
}

refresh();
setInterval(refresh, POLL_MS);
