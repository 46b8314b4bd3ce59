// What the phoenix.js baselines share: the in-process fake transport that
// acknowledges joins, leaves and heartbeats through the client's normal
// message path, opening a socket on it, and the checks that nothing was left
// scheduled and no reconnect fired. `churn.mjs` and `session.mjs` import it,
// so both measure the client over exactly the same transport.

import { readFileSync } from "node:fs";

// Readiness values of the WebSocket API, which phoenix.js compares against.
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export const log = (msg) => process.stderr.write(`${msg}\n`);

export class BenchError extends Error {}
export const fail = (msg) => {
  throw new BenchError(msg);
};

// ---------------------------------------------------------------------------
// Fake server side, behind the WebSocket-like interface phoenix.js expects.
// Replies are queued and only delivered by drain(), through the client's
// ordinary onmessage path: a real socket never answers inside send(), and
// delivering from the caller keeps every op synchronous and timer-free.

export class FakeTransport {
  static instances = 0;

  constructor(url, protocols) {
    FakeTransport.instances++;
    this.url = url;
    this.protocols = protocols;
    this.readyState = CONNECTING;
    this.binaryType = "blob";
    this.bufferedAmount = 0;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this.inbox = [];
  }

  // phoenix.js attaches its handlers only after constructing the transport,
  // so the harness opens it right after socket.connect().
  open() {
    this.readyState = OPEN;
    this.onopen({ type: "open" });
  }

  // Frames are V2 arrays `[join_ref, ref, topic, event, payload]`. The topics
  // here never contain commas or quotes, so splitting off the first four JSON
  // tokens and splicing them into the reply keeps the fake server's share of
  // each op small; anything unexpected fails loudly below.
  send(data) {
    if (this.readyState !== OPEN) fail("fake transport: send() while not open");
    if (data[0] !== "[") fail(`fake transport: not a V2 JSON frame: ${data}`);
    const [joinRef, ref, topic, event] = data.slice(1).split(",", 4);
    switch (event) {
      case '"phx_join"':
        this.inbox.push(okReply(joinRef, ref, topic));
        break;
      case '"phx_leave"':
        // Like Phoenix.Socket: ack the leave, then report the channel closed.
        this.inbox.push(okReply(joinRef, ref, topic));
        this.inbox.push(`[${joinRef},${joinRef},${topic},"phx_close",{}]`);
        break;
      case '"heartbeat"':
        this.inbox.push(okReply("null", ref, topic));
        break;
      default:
        fail(`fake transport: unexpected client frame ${data}`);
    }
  }

  // Queues a server-initiated frame (e.g. a broadcast) for the next drain().
  inject(frame) {
    this.inbox.push(JSON.stringify(frame));
  }

  // Frames sent by handlers during delivery (a leave on join ok) append to
  // the inbox and are delivered in the same pass.
  drain() {
    const inbox = this.inbox;
    for (let i = 0; i < inbox.length; i++) this.onmessage({ data: inbox[i] });
    inbox.length = 0;
  }

  // A clean close initiated by the client; phoenix.js marks its connection
  // as closing before calling this, so it does not schedule a reconnect.
  close(code = 1000, reason = "") {
    this.readyState = CLOSED;
    this.inbox.length = 0;
    if (this.onclose) this.onclose({ code, reason, wasClean: true });
  }
}

// Arguments are JSON tokens taken verbatim from the client's frame.
const okReply = (joinRef, ref, topic) => `[${joinRef},${ref},${topic},"phx_reply",{"status":"ok","response":{}}]`;

// ---------------------------------------------------------------------------

let socketsOpened = 0;

// A connected socket on a fake transport, its heartbeat reply path proven.
export function openSocket(Socket) {
  // Absolute URL: a relative one makes phoenix.js read `location`.
  const socket = new Socket("ws://phoenix.test/socket", { transport: FakeTransport, vsn: "2.0.0" });
  socket.connect();
  socketsOpened++;
  socket.conn.open();
  if (!socket.isConnected()) fail("socket did not reach the open state");

  // One heartbeat round trip, to prove the reply path before measuring.
  socket.sendHeartbeat();
  socket.conn.drain();
  if (socket.pendingHeartbeatRef !== null) fail("heartbeat reply was not matched");
  return socket;
}

// Nothing may stay scheduled once a socket is disconnected: a leftover
// timer means a push never got its reply or a reconnect/rejoin was armed.
export function checkNoTimers(context) {
  if (typeof process.getActiveResourcesInfo !== "function") return;
  const timers = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  if (timers !== 0) fail(`${context}: ${timers} phoenix.js timer(s) still pending`);
}

export async function loadPhoenix() {
  try {
    const { Socket } = await import("phoenix");
    const pkgUrl = new URL("../../package.json", import.meta.resolve("phoenix"));
    const { version } = JSON.parse(readFileSync(pkgUrl, "utf8"));
    return { Socket, version };
  } catch (err) {
    fail(`cannot load the phoenix package (${err.message}); run \`npm ci\` in benches/phoenix-js first`);
  }
}

// Runs `main`, reporting a BenchError as one line and anything else with its
// stack. A reconnect would open a second transport after main() has returned:
// that fails the run too.
export function run(script, main) {
  process.on("exit", (code) => {
    if (code === 0 && FakeTransport.instances !== socketsOpened) {
      log(`${script}: error: phoenix.js opened ${FakeTransport.instances} transports for ${socketsOpened} sockets (reconnect fired)`);
      process.exitCode = 1;
    }
  });
  main().catch((err) => {
    log(`${script}: error: ${err instanceof BenchError ? err.message : err.stack}`);
    process.exit(1);
  });
}

export const ms = (ns) => `${(Number(ns) / 1e6).toFixed(0)} ms`;
