// turbo-dex web screen. Public data over the market-data WebSocket channels, the Transports panel over /ws/stats,
// the trader's own orders and fills over REST with the headers authHeaders() builds (the one identity seam): signed
// with the API key's secret (WebCrypto) as turbo-dex --auth keys verifies it, or X-Trader for a server with --auth off.
// Prices and quantities stay the server's decimal strings everywhere they are shown; only the charts get numbers.
"use strict";

const state = {
  symbol: "",
  interval: "1m",
  key: localStorage.getItem("dex.key") || "",  // the key id (or, for --auth off, a trader name): not a secret
  signer: null,          // {scheme, sign(bytes) -> signature}: a non-extractable CryptoKey in this page's memory only
  lastStamp: 0,          // the previous request's timestamp: each is later (signatures are deterministic: no replays)
  refused: "",           // the server's last refusal of the key (401): shown, and private refreshes stop until a new key
  instruments: new Map(),
  sockets: [],
  privateTimer: 0,
  measured: {},          // transport -> figures of the last report (/reports/files/transport-comparison.json)
  seenAt: new Map(),     // "side:price" -> ms (epoch) when the ladder first showed that level  } both bounded; read by
  tradeSeenAt: new Map(),// trade id -> ms (epoch) when the tape received that trade             } traders/screen_timings.py
  candleRows: [],        // [start ms, o, h, l, c, v, n] as the server sent them, oldest first
};
const $ = (id) => document.getElementById(id);
const wsBase = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const nowMs = () => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------ identity: the one seam
// Every request that acts as a trader gets its identity here, and only here. With a secret, the four headers of a
// signed request (docs/security.md, "HTTP and WebSocket") over
//   <timestamp>\n<window>\n<METHOD>\n<path>\n<query>\n<body>
// with path, query and body exactly as fetch() sends them: HMAC-SHA256 (hex) or Ed25519 (base64). Without one, the
// X-Trader header names the trader (a server with --auth off trusts it; one with keys refuses it: 401).
const WINDOW_MS = 5000;
const encoder = new TextEncoder();
// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): WebCrypto imports private keys only in PKCS#8 or JWK.
const ED25519_PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
const base64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)));

async function makeSigner(scheme, secret) {
  let raw;
  try {
    raw = Uint8Array.from(atob(secret.trim()), (c) => c.charCodeAt(0));
  } catch (error) {
    throw new Error("the secret is the credential file's private_key (base64)");
  }
  if (!window.crypto || !crypto.subtle) throw new Error("this page is not a secure context: WebCrypto cannot sign here");
  if (scheme === "ed25519") {
    if (raw.length !== 32) throw new Error("an Ed25519 private_key is 32 bytes (base64)");
    const der = new Uint8Array([...ED25519_PKCS8_PREFIX, ...raw]);
    const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
    return { scheme, sign: async (bytes) => base64(await crypto.subtle.sign({ name: "Ed25519" }, key, bytes)) };
  }
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return { scheme, sign: async (bytes) => hex(await crypto.subtle.sign("HMAC", key, bytes)) };
}

async function authHeaders(method, path, query, body) {
  if (!state.key) return null;
  if (!state.signer) return { "X-Trader": state.key };
  const stamp = Math.max(Date.now(), state.lastStamp + 1);
  state.lastStamp = stamp;
  const head = encoder.encode(`${stamp}\n${WINDOW_MS}\n${method.toUpperCase()}\n${path}\n${query}\n`);
  const tail = encoder.encode(body ?? "");
  const message = new Uint8Array(head.length + tail.length);
  message.set(head); message.set(tail, head.length);
  return {
    "DEX-KEY": state.key, "DEX-TIMESTAMP": String(stamp), "DEX-WINDOW": String(WINDOW_MS),
    "DEX-SIGNATURE": await state.signer.sign(message),
  };
}

async function privateFetch(method, path, query = "", body = null) {
  const text = body === null ? null : JSON.stringify(body);  // signed and sent as these very bytes
  const headers = await authHeaders(method, path, query, text);
  if (headers === null) throw new Error("enter your API key first");
  const init = { method, headers: { ...headers } };
  if (text !== null) {
    init.body = text;
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path + (query ? "?" + query : ""), init);
  const data = await response.json();
  if (response.status === 401) refuseKey(data);
  return { ok: response.ok, status: response.status, data };
}

async function publicJson(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// ------------------------------------------------------------------ sockets
function channel(path, onMessage, sticky = false) {
  const symbol = state.symbol;  // a symbol's channel reconnects only while that symbol is shown; a sticky one always
  let socket;
  const open = () => {
    socket = new WebSocket(wsBase() + path);
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = () => { if ((sticky || state.symbol === symbol) && !socket.stopped) setTimeout(open, 1000); };
    handle.socket = socket;
  };
  const handle = { close() { socket.stopped = true; socket.close(); } };
  open();
  return handle;
}

function closeSymbolChannels() {
  for (const handle of state.sockets) handle.close();
  state.sockets = [];
}

// ------------------------------------------------------------------ book: ladder and depth chart
function renderBook(msg) {
  if (msg.type !== "depth" || msg.symbol !== state.symbol) return;
  const rows = (levels, side) => levels.map(([price, qty, count]) => {
    const key = side + ":" + price;
    if (!state.seenAt.has(key)) remember(state.seenAt, key, nowMs());
    return `<tr data-side="${side}" data-price="${price}"><td>${price}</td><td>${qty}</td><td>${count}</td></tr>`;
  }).join("");
  $("asks").innerHTML = rows([...msg.asks].reverse(), "sell");
  $("bids").innerHTML = rows(msg.bids, "buy");
  const bid = msg.bids[0], ask = msg.asks[0];
  $("spread").textContent = bid && ask ? `spread ${(Number(ask[0]) - Number(bid[0])).toFixed(decimals(ask[0]))}` : (msg.last_price ? `last ${msg.last_price}` : "no orders");
  drawDepth(msg.bids, msg.asks);
  schedulePrivate();
}

function remember(map, key, value) {
  if (map.size >= 5000) map.delete(map.keys().next().value);  // oldest first: a page left open stays small
  map.set(key, value);
}

function decimals(text) {
  const dot = String(text).indexOf(".");
  return dot < 0 ? 0 : String(text).length - dot - 1;
}

function drawDepth(bids, asks) {
  const canvas = $("depth-chart");
  const width = canvas.clientWidth, height = canvas.clientHeight;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const cumulative = (levels) => { let sum = 0; return levels.map(([p, q]) => [Number(p), (sum += Number(q))]); };
  const b = cumulative(bids), a = cumulative(asks);
  if (!b.length && !a.length) return;
  const prices = [...b, ...a].map((x) => x[0]);
  const lo = Math.min(...prices), hi = Math.max(...prices);
  const top = Math.max(b.length ? b[b.length - 1][1] : 0, a.length ? a[a.length - 1][1] : 0) || 1;
  const x = (p) => (hi === lo ? width / 2 : ((p - lo) / (hi - lo)) * (width - 8) + 4);
  const y = (q) => height - 4 - (q / top) * (height - 12);
  const area = (points, color) => {
    if (!points.length) return;
    ctx.beginPath();
    ctx.moveTo(x(points[0][0]), height);
    let previous = 0;
    for (const [p, q] of points) { ctx.lineTo(x(p), y(previous)); ctx.lineTo(x(p), y(q)); previous = q; }
    ctx.lineTo(x(points[points.length - 1][0]), height);
    ctx.closePath();
    ctx.fillStyle = color + "55"; ctx.strokeStyle = color;
    ctx.fill(); ctx.stroke();
  };
  area(b, "#26a269");
  area(a, "#e5484d");
}

// ------------------------------------------------------------------ candles (lightweight-charts) and the tape
let chart = null, candleSeries = null, volumeSeries = null;

function makeChart() {
  const el = $("candles");
  chart = LightweightCharts.createChart(el, {
    autoSize: true,
    layout: { background: { color: "#161c23" }, textColor: "#d8dee6" },
    grid: { vertLines: { color: "#1f2833" }, horzLines: { color: "#1f2833" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  candleSeries = chart.addSeries(LightweightCharts.CandlestickSeries, {
    upColor: "#26a269", downColor: "#e5484d", borderVisible: false, wickUpColor: "#26a269", wickDownColor: "#e5484d",
  });
  volumeSeries = chart.addSeries(LightweightCharts.HistogramSeries, { priceScaleId: "", priceFormat: { type: "volume" }, color: "#4c8dff66" });
  volumeSeries.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
}

const bar = (row) => ({ time: row[0] / 1000, open: Number(row[1]), high: Number(row[2]), low: Number(row[3]), close: Number(row[4]) });
const volumeBar = (row) => ({ time: row[0] / 1000, value: Number(row[5]) });

function mergeCandles(rows) {
  const known = state.candleRows;
  const newest = known.length ? known[known.length - 1][0] : -Infinity;
  if (known.length && rows.every((row) => row[0] >= newest)) {
    // The usual message: the open candle changed (or new ones opened): update in place, no redraw of the series.
    for (const row of rows) {
      if (known.length && known[known.length - 1][0] === row[0]) known[known.length - 1] = row;
      else known.push(row);
      candleSeries.update(bar(row));
      volumeSeries.update(volumeBar(row));
    }
  } else {
    const byStart = new Map(known.map((row) => [row[0], row]));
    for (const row of rows) byStart.set(row[0], row);
    state.candleRows = [...byStart.values()].sort((p, q) => p[0] - q[0]);
    candleSeries.setData(state.candleRows.map(bar));
    volumeSeries.setData(state.candleRows.map(volumeBar));
  }
  $("candles").dataset.count = String(state.candleRows.length);
}

async function loadCandles() {
  state.candleRows = [];
  const data = await publicJson(`/candles/${encodeURIComponent(state.symbol)}?interval=${state.interval}&limit=1440`);
  mergeCandles(data.candles);
}

function onCandles(msg) {
  if (msg.type === "candles" && msg.symbol === state.symbol && msg.interval === state.interval) mergeCandles(msg.candles);
}

function onTrades(msg) {
  if (msg.type !== "trades" || msg.symbol !== state.symbol || !msg.trades.length) return;
  const received = nowMs();
  for (const t of msg.trades) remember(state.tradeSeenAt, t.trade_id, received);
  const tape = $("trades");
  const html = msg.trades.slice().reverse().map((t) => {
    const when = t.time ? new Date(t.time).toLocaleTimeString() : "-";
    return `<tr data-trade="${t.trade_id}"><td>${when}</td><td class="${t.aggressor_side}">${t.price}</td><td>${t.qty}</td><td>${t.aggressor_side}</td></tr>`;
  }).join("");
  tape.insertAdjacentHTML("afterbegin", html);
  while (tape.rows.length > 100) tape.deleteRow(tape.rows.length - 1);
  schedulePrivate();
}

function onTicker(msg) {
  if (msg.type !== "ticker" || msg.symbol !== state.symbol) return;
  $("t-last").textContent = msg.last ?? "-";
  $("t-change").textContent = msg.change_percent !== null ? `${msg.change_percent}%` : "-";
  $("t-high").textContent = msg.high ?? "-";
  $("t-low").textContent = msg.low ?? "-";
  $("t-volume").textContent = msg.volume;
}

// ------------------------------------------------------------------ the trader's own: orders, fills, entry
function schedulePrivate() {
  if (!state.key || state.refused || state.privateTimer) return;
  state.privateTimer = setTimeout(() => { state.privateTimer = 0; refreshPrivate(); }, 200);
}

async function refreshPrivate() {
  if (!state.key || state.refused) return;
  const symbol = encodeURIComponent(state.symbol);
  const [orders, fills] = await Promise.all([
    privateFetch("GET", "/orders", `symbol=${symbol}`),
    privateFetch("GET", "/fills", `symbol=${symbol}&limit=1000`),
  ]);
  if (orders.ok) {
    $("my-orders").innerHTML = orders.data.orders.map((o) => `<tr data-order="${o.order_id}" data-client-order-id="${o.client_order_id}">
      <td>${o.order_id}</td><td class="${o.side}">${o.side}</td><td>${o.order_type}${o.tif !== "gtc" ? " " + o.tif : ""}</td>
      <td>${o.price ?? o.stop_price ?? "market"}</td><td>${o.remaining}</td><td>${o.filled}</td>
      <td><button type="button" data-cancel="${o.order_id}">Cancel</button></td></tr>`).join("");
  }
  if (fills.ok) {
    $("my-fills").innerHTML = fills.data.fills.slice(-50).reverse().map((f) => `<tr data-fill="${f.trade_id}">
      <td>${f.trade_id}</td><td class="${f.side}">${f.side}</td><td>${f.price}</td><td>${f.qty}</td><td>${f.maker ? "maker" : "taker"}</td></tr>`).join("");
  }
}

function orderBody(form) {
  const f = new FormData(form);
  const body = { symbol: state.symbol, side: f.get("side"), qty: f.get("qty").trim() };
  const price = f.get("price").trim(), stop = f.get("stop_price").trim(), coid = f.get("client_order_id").trim();
  const kind = f.get("kind");
  if (coid) body.client_order_id = coid;
  if (kind === "market") body.order_type = "market";
  else if (kind === "stop") {
    body.order_type = price ? "stop_limit" : "stop_market";
    body.stop_price = stop;
    if (price) body.price = price;
  } else {
    body.order_type = "limit";
    body.price = price;
    body.tif = kind === "ioc" ? "ioc" : kind === "fok" ? "fok" : "gtc";
    if (kind === "post_only") body.post_only = true;
  }
  return body;
}

function describeOutcome(reply) {
  if (reply.data.type === "error") return [`${reply.data.reason}: ${reply.data.message}`, true];
  const events = reply.data.events || [];
  const rejected = events.find((e) => e.type === "rejected");
  if (rejected) return [`rejected ${rejected.reason}: ${rejected.message}`, true];
  const accepted = events.find((e) => e.type === "accepted");
  const trades = events.filter((e) => e.type === "trade").length;
  const cancelled = events.find((e) => e.type === "cancelled");
  const parts = [accepted ? `accepted #${accepted.order_id}` : "done"];
  if (trades) parts.push(`${trades} fill(s)`);
  if (cancelled) parts.push(`rest cancelled (${cancelled.reason})`);
  return [parts.join(", "), false];
}

async function placeOrder(event) {
  event.preventDefault();
  const out = $("order-result");
  try {
    const reply = await privateFetch("POST", "/orders", "", orderBody(event.target));
    const [text, bad] = describeOutcome(reply);
    out.textContent = text; out.classList.toggle("bad", bad);
  } catch (error) {
    out.textContent = String(error); out.classList.add("bad");
  }
  refreshPrivate();
}

async function cancelOrder(orderId) {
  const reply = await privateFetch("DELETE", `/orders/${orderId}`);
  const [text, bad] = describeOutcome(reply);
  $("order-result").textContent = text; $("order-result").classList.toggle("bad", bad);
  refreshPrivate();
}

async function cancelAll() {
  const reply = await privateFetch("DELETE", "/orders", `symbol=${encodeURIComponent(state.symbol)}`);
  if (reply.ok) {
    const count = (reply.data.events || []).filter((e) => e.type === "cancelled").length;
    $("order-result").textContent = `cancelled ${count} order(s)`; $("order-result").classList.remove("bad");
  }
  refreshPrivate();
}

const LOCKED = "Enter an API key above to trade: its key id and secret (the private_key of the credential file "
  + "`dex-keys create NAME --hmac` writes). A server started with --auth off takes a trader name alone.";

// The key id is remembered (localStorage: it is no secret); the secret is not: it becomes a non-extractable CryptoKey
// in this page's memory, the input is cleared, and a reload asks for it again (docs/screen.md says why).
async function useKey(key, secret = "", scheme = "hmac") {
  state.key = key.trim();
  state.refused = "";
  state.signer = null;
  localStorage.setItem("dex.key", state.key);
  $("key").value = state.key;
  $("secret").value = "";
  let problem = "";
  if (state.key && secret.trim()) {
    try {
      state.signer = await makeSigner(scheme, secret);
    } catch (error) {
      problem = error.message || String(error);
      state.refused = problem;  // nothing to sign with: no request goes out as X-Trader instead
    }
  }
  const trading = Boolean(state.key) && !problem;
  $("order-form").hidden = !trading;
  $("cancel-all").hidden = !trading;
  $("locked").hidden = trading;
  $("locked").textContent = problem ? `This key cannot sign: ${problem}.` : LOCKED;
  $("key-state").textContent = !trading ? "market data only"
    : state.signer ? `signing as ${state.key} (${state.signer.scheme === "ed25519" ? "Ed25519" : "HMAC-SHA256"})` : `trading as ${state.key}`;
  $("key-state").classList.remove("bad");
  $("order-result").textContent = ""; $("order-result").classList.remove("bad");
  $("my-orders").innerHTML = ""; $("my-fills").innerHTML = "";
  refreshPrivate();
}

// A 401 from the server: the key (or its absence) is refused. Say why where the user looks, hide the form and stop
// re-reading orders and fills (each would be refused the same way) until a key is entered again.
function refuseKey(data) {
  const reason = data && data.type === "error" ? `${data.reason}: ${data.message}` : "UNAUTHENTICATED";
  state.refused = reason;
  const advice = state.signer ? "check the key id, its secret and its scheme" : "this exchange needs a signed key: enter its secret";
  $("locked").textContent = `The exchange refused this key (${reason}): ${advice}.`;
  $("locked").hidden = false;
  $("order-form").hidden = true;
  $("cancel-all").hidden = true;
  $("key-state").textContent = `refused: ${reason}`;
  $("key-state").classList.add("bad");
}

// ------------------------------------------------------------------ Transports panel
function onStats(msg) {
  if (msg.type !== "transports") return;
  $("queue-total").textContent = msg.queue_depth;
  const measured = state.measured;
  $("transport-rows").innerHTML = msg.transports.map((t) => {
    const m = measured[t.transport] || {};
    return `<tr data-transport="${t.transport}"><td>${t.transport}</td><td>${t.orders_per_s}</td><td>${t.commands_per_s}</td>
      <td>${t.p50_us}</td><td>${t.p99_us}</td><td>${t.rejects}</td><td>${t.queue_depth}</td>
      <td>${m.batch ?? "-"}</td><td>${m.singleP99 ?? "-"}</td></tr>`;
  }).join("");
}

async function loadMeasured() {
  try {
    const report = await publicJson("/reports/files/transport-comparison.json");
    for (const [name, modes] of Object.entries(report.summary || {})) {
      const batch = modes.batch && modes.batch.throughput_per_s;
      const single = modes.single && modes.single.latency_us && modes.single.latency_us.p99;
      state.measured[name] = {
        batch: batch ? Math.round(batch.median).toLocaleString("en") : undefined,
        singleP99: single ? Math.round(single.median).toLocaleString("en") : undefined,
      };
    }
  } catch (error) {
    state.measured = {};  // no report measured here yet: the live figures stand alone
  }
}

// ------------------------------------------------------------------ symbol switching and start-up
async function selectSymbol(symbol) {
  closeSymbolChannels();
  state.symbol = symbol;
  state.seenAt.clear();
  state.tradeSeenAt.clear();
  location.hash = symbol;
  $("trades").innerHTML = ""; $("asks").innerHTML = ""; $("bids").innerHTML = "";
  const s = encodeURIComponent(symbol);
  await loadCandles();
  state.sockets.push(
    channel(`/ws/depth/${s}?limit=20`, renderBook),
    channel(`/ws/trades/${s}?limit=50`, onTrades),
    channel(`/ws/candles/${s}?interval=${state.interval}`, onCandles),
    channel(`/ws/ticker/${s}`, onTicker),
  );
  refreshPrivate();
}

async function selectInterval(interval) {
  state.interval = interval;
  for (const b of $("intervals").querySelectorAll("button")) b.classList.toggle("on", b.dataset.interval === interval);
  await selectSymbol(state.symbol);
}

async function start() {
  makeChart();
  const data = await publicJson("/instruments");
  const picker = $("symbol");
  for (const instrument of data.instruments) {
    state.instruments.set(instrument.symbol, instrument);
    picker.add(new Option(instrument.symbol, instrument.symbol));
  }
  const wanted = decodeURIComponent(location.hash.slice(1));
  picker.value = state.instruments.has(wanted) ? wanted : data.instruments[0].symbol;
  picker.addEventListener("change", () => selectSymbol(picker.value));
  $("intervals").addEventListener("click", (e) => { if (e.target.dataset.interval) selectInterval(e.target.dataset.interval); });
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); useKey($("key").value, $("secret").value, $("scheme").value); });
  $("order-form").addEventListener("submit", placeOrder);
  $("kind").addEventListener("change", () => {
    const kind = $("kind").value;
    $("stop-row").hidden = kind !== "stop";
    $("price-row").hidden = kind === "market";
  });
  $("my-orders").addEventListener("click", (e) => { if (e.target.dataset.cancel) cancelOrder(e.target.dataset.cancel); });
  $("cancel-all").addEventListener("click", cancelAll);
  await loadMeasured();
  channel("/ws/stats?interval_ms=1000", onStats, true);
  await useKey(state.key);
  await selectSymbol(picker.value);
  window.dexScreen.readyMs = performance.now();  // traders/screen_timings.py reads it
  document.body.dataset.ready = "1";
}

window.dexScreen = { state, get candleSeries() { return candleSeries; }, refreshPrivate };
start();
