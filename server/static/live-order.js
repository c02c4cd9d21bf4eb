// The live order page: the order by query, then its events by subscription over
// graphql-transport-ws (written out here: the protocol is a handful of JSON messages).
// Plain JavaScript, no build step.
"use strict";

const ORDER_FIELDS = `id status nextDeadlineAt
  total { amount currency }
  buyer { legalName } supplier { legalName }
  shipment { carrier trackingNumber shippedAt late }
  receipt { receivedAt automatic claimWindowEndsAt }
  money { paid { amount currency } held { amount currency }
          released { amount currency } refunded { amount currency } }
  deadlines { kind dueAt passed met }
  events { id kind oldStatus newStatus actorKind reason at }`;
const ORDER_QUERY = `query LiveOrder($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;
const ORDER_SUBSCRIPTION = `subscription LiveOrder($id: ID!, $after: String) {
  orderStatusChanged(orderId: $id, after: $after) { cursor order { ${ORDER_FIELDS} } } }`;

const TOKEN_KEY = "ta-live-token";
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;
const PING_EVERY_MS = 15000; // a silent network drop shows as a missing pong
const PONG_WITHIN_MS = 5000;
// Closes after which trying again cannot help: the token or the request is refused (the
// close reason says why: TOKEN_EXPIRED, TOKEN_REVOKED, MALFORMED_AUTHORIZATION, ...).
const FATAL_CLOSE = { 4400: "bad request", 4401: "unauthorized", 4403: "token refused" };
// Any other close is tried again with back-off; these say why on the page. 4029: this
// token holds all its live connections; one frees when another tab or client leaves.
const RETRY_CLOSE = { 4029: "too many live connections for this token" };
// Errors of the subscription itself that reconnecting from the cursor does cure.
const RETRYABLE_CODES = new Set(["TOO_SLOW", "UNAVAILABLE"]);

const $ = (id) => document.getElementById(id);

function orderIdFromPath() {
  const raw = decodeURIComponent(window.location.pathname.split("/")[2] || "");
  // `/orders/42/live` and `/orders/<global id>/live` both work.
  return /^\d+$/.test(raw) ? btoa(`Order:${raw}`) : raw;
}

/** One graphql-transport-ws connection with one subscription, reconnecting with back-off
 * and resuming after the last cursor it received. */
class LiveOrder {
  constructor(orderId, token, handlers) {
    this.orderId = orderId;
    this.token = token;
    this.handlers = handlers; // {state(name, text), order(o), fatal(message), connected()}
    this.cursor = null;
    this.attempt = 0;
    this.socket = null;
    this.stopped = false;
    this.timers = new Set();
  }

  start() {
    this.handlers.state("connecting", "connecting…");
    const url = new URL("/graphql", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.socket = socket;
    socket.onopen = () => this.send({
      type: "connection_init",
      payload: { Authorization: `Bearer ${this.token}` },
    });
    socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    socket.onclose = (event) => this.closed(socket, event);
  }

  stop() {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    if (this.socket) this.socket.close(1000, "bye");
    this.handlers.state("stopped", "stopped");
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  later(ms, fn) {
    const timer = setTimeout(() => { this.timers.delete(timer); fn(); }, ms);
    this.timers.add(timer);
    return timer;
  }

  receive(message) {
    switch (message.type) {
      case "connection_ack":
        this.attempt = 0;
        this.send({
          id: "order",
          type: "subscribe",
          payload: { query: ORDER_SUBSCRIPTION, variables: { id: this.orderId, after: this.cursor } },
        });
        this.handlers.state("live", "live");
        this.handlers.connected(); // refresh by query: covers anything the cursor cannot
        this.keepAlive();
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "pong":
        clearTimeout(this.pongTimer);
        break;
      case "next": {
        const { data, errors } = message.payload;
        if (errors && errors.length) return this.failed(errors);
        const live = data.orderStatusChanged;
        this.cursor = live.cursor;
        if (live.order) this.handlers.order(live.order);
        break;
      }
      case "error":
        this.failed(message.payload);
        break;
      case "complete": // the server ended the stream: pick it up again from the cursor
        this.socket.close(1000, "stream completed");
        break;
    }
  }

  failed(errors) {
    const code = errors[0] && errors[0].extensions && errors[0].extensions.code;
    if (RETRYABLE_CODES.has(code)) {
      this.socket.close(1000, code);
      return;
    }
    this.handlers.fatal(errors.map((e) => e.message + (e.extensions ? ` (${e.extensions.code})` : "")).join("; "));
    this.stop();
  }

  keepAlive() {
    clearTimeout(this.pingTimer);
    const socket = this.socket;
    this.pingTimer = this.later(PING_EVERY_MS, () => {
      if (socket !== this.socket || socket.readyState !== WebSocket.OPEN) return;
      this.send({ type: "ping" });
      this.pongTimer = this.later(PONG_WITHIN_MS, () => socket.close(4000, "no pong"));
      this.keepAlive();
    });
  }

  closed(socket, event) {
    if (socket !== this.socket || this.stopped) return;
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    if (FATAL_CLOSE[event.code]) {
      const why = event.reason ? `: ${event.reason}` : "";
      this.handlers.fatal(`The gateway closed the connection, ${FATAL_CLOSE[event.code]}${why} (${event.code}).`);
      this.stop();
      return;
    }
    // Exponential back-off with jitter, so a restarted gateway is not hit by every page at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    this.attempt += 1;
    this.handlers.state(
      "lost",
      `${RETRY_CLOSE[event.code] || "connection lost"} — reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`,
    );
    this.later(delay, () => this.start());
  }
}

// --- rendering ---------------------------------------------------------------------------

let shown = null; // the order on screen

function money(m) {
  return m ? `${m.amount} ${m.currency}` : "—";
}

function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function cell(row, text, title) {
  const td = row.insertCell();
  td.textContent = text;
  if (title) td.title = title;
}

function render(order) {
  // The timeline only grows, so an answer older than what is shown (a slow query overtaken
  // by a subscription event) is dropped.
  if (shown && order.events.length < shown.events.length) return;
  const known = new Set(shown ? shown.events.map((e) => e.id) : []);
  const changed = !shown || shown.status !== order.status;
  shown = order;
  $("order").hidden = false;
  $("status").textContent = order.status;
  $("status").dataset.status = order.status;
  if (changed) $("status").classList.add("fresh");
  $("parties").textContent = ` · ${order.buyer.legalName} buys from ${order.supplier.legalName}`;
  const s = order.shipment;
  const r = order.receipt;
  $("shipment").textContent = [
    s ? `Shipped ${when(s.shippedAt)} by ${s.carrier}, tracking ${s.trackingNumber}${s.late ? " (late)" : ""}.` : "",
    r ? `Received ${when(r.receivedAt)}${r.automatic ? " (automatically)" : ""}; claims until ${when(r.claimWindowEndsAt)}.` : "",
  ].join(" ");
  $("money-total").textContent = money(order.total);
  for (const key of ["paid", "held", "released", "refunded"]) {
    $(`money-${key}`).textContent = money(order.money[key]);
  }
  const deadlines = $("deadlines");
  deadlines.replaceChildren();
  for (const d of order.deadlines) {
    const row = deadlines.insertRow();
    row.dataset.kind = d.kind;
    cell(row, d.kind);
    cell(row, when(d.dueAt), d.dueAt);
    cell(row, d.met ? "met" : d.passed ? "passed" : d.dueAt === order.nextDeadlineAt ? "next" : "open");
  }
  const timeline = $("timeline");
  timeline.replaceChildren();
  for (const e of order.events) {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    if (shown && known.size && !known.has(e.id)) li.classList.add("fresh");
    const time = document.createElement("time");
    time.dateTime = e.at;
    time.textContent = when(e.at);
    const change = e.oldStatus && e.oldStatus !== e.newStatus ? `${e.oldStatus} → ${e.newStatus}` : e.newStatus;
    li.append(time, `${e.kind}: ${change} by ${e.actorKind}${e.reason ? ` — ${e.reason}` : ""}`);
    timeline.append(li);
  }
}

function problem(message) {
  $("problem").hidden = !message;
  $("problem").textContent = message || "";
}

function setState(state, text) {
  $("connection").dataset.state = state;
  $("connection").textContent = text;
}

class Refused extends Error {}

async function refresh(orderId, token) {
  let response;
  try {
    response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: ORDER_QUERY, variables: { id: orderId } }),
    });
  } catch {
    return; // the gateway went away again: the socket reconnects and refreshes once more
  }
  const body = await response.json();
  if (body.errors && body.errors.length) {
    const e = body.errors[0];
    throw new Refused(`${e.message}${e.extensions && e.extensions.code ? ` (${e.extensions.code})` : ""}`);
  }
  if (!body.data.order) throw new Refused("No such order, or not yours (NOT_FOUND).");
  render(body.data.order);
}

let current = null;

function watch(token) {
  if (current) current.stop();
  problem(null);
  shown = null;
  const orderId = orderIdFromPath();
  current = new LiveOrder(orderId, token, {
    state: setState,
    order: render,
    fatal: problem,
    connected: () => refresh(orderId, token).catch((e) => {
      problem(e.message);
      current.stop();
    }),
  });
  current.start();
}

$("order-id").textContent = orderIdFromPath();
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
  sessionStorage.setItem(TOKEN_KEY, token);
  watch(token);
});
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  $("token").value = saved;
  watch(saved);
}
