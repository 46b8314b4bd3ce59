#!/usr/bin/env node
// Baseline for channel-registry: the official `phoenix` JS client doing channel
// lifecycle and version-switch churn, driven by an in-process fake transport
// so the run is CPU-bound: no network, and nothing waits on a timer or an
// event-loop turn (phoenix.js still arms and clears a timeout per push).
//
//   npm ci --prefix benches/phoenix-js      # once
//   node benches/phoenix-js/churn.mjs [--live 1000,10000] [--ops K] [--quick]
//
// stdout: one JSON object per measurement; stderr: progress.

import { randomUUID } from "node:crypto";

import { checkNoTimers, fail, loadPhoenix, log, ms, openSocket, run } from "./fake-transport.mjs";

const USAGE = `usage: node churn.mjs [--live N[,N...]] [--ops K] [--quick]
  --live   live background channels per run (default 1000,10000)
  --ops    timed operations per scenario (default: sized for ~1-3 s each)
  --quick  small op counts, for a smoke test`;

const workflowTopic = (doc, version) => `workflow:${doc}:v${version}`;

function joinBackground(socket, live) {
  const chans = [];
  for (let i = 0; i < live; i++) {
    const ch = socket.channel(workflowTopic(randomUUID(), 1));
    ch.join();
    chans.push(ch);
  }
  socket.conn.drain();
  for (const ch of chans) {
    if (ch.state !== "joined") fail(`background channel ${ch.topic} is ${ch.state}, not joined`);
  }
  return chans;
}

function checkLive(socket, live, background, scenario) {
  if (socket.channels.length !== live) {
    fail(`${scenario}: socket.channels has ${socket.channels.length} channels, expected ${live}`);
  }
  for (const ch of background) {
    if (ch.state !== "joined") fail(`${scenario}: background channel ${ch.topic} is ${ch.state}`);
  }
}

// Each scenario's prepare() does the untimed setup (topic strings included,
// so the timing covers the client only) and returns the timed loop plus a
// cleanup that restores the socket to its N background channels.
const SCENARIOS = {
  // Brand-new topic: channel() + join() -> joined, leave() -> closed and removed.
  // phoenix.js closes and removes a channel inside leave() itself (the leave
  // push is acked locally because the channel is no longer "joined"); the
  // server's ok and phx_close still arrive and are scanned and dropped.
  lifecycle: {
    prepare(socket, ops) {
      const topics = Array.from({ length: ops }, () => workflowTopic(randomUUID(), 1));
      const conn = socket.conn;
      const live = socket.channels.length;
      const run = () => {
        for (let i = 0; i < ops; i++) {
          const ch = socket.channel(topics[i]);
          ch.join();
          conn.drain();
          if (ch.state !== "joined") fail(`lifecycle: ${ch.topic} is ${ch.state} after join ack`);
          ch.leave();
          conn.drain();
          if (ch.state !== "closed") fail(`lifecycle: ${ch.topic} is ${ch.state} after leave ack`);
          if (socket.channels.length !== live) fail("lifecycle: left channel was not removed");
        }
      };
      return { run, cleanup() {} };
    },
  },

  // One room following one document: join v<n+1>, and once it is joined
  // leave v<n> (handover).
  switch: {
    prepare(socket, ops) {
      const doc = randomUUID();
      const topics = Array.from({ length: ops + 1 }, (_, v) => workflowTopic(doc, v + 1));
      const conn = socket.conn;
      let current = socket.channel(topics[0]);
      current.join();
      conn.drain();
      if (current.state !== "joined") fail("switch: first version did not join");
      const live = socket.channels.length;
      // One shared hook reading `prev`: a per-op closure would be kept by the
      // new channel's join push and chain every old version into memory.
      let prev = null;
      const handover = () => prev.leave();
      const run = () => {
        for (let i = 1; i <= ops; i++) {
          prev = current;
          const next = socket.channel(topics[i]);
          next.join().receive("ok", handover);
          conn.drain();
          if (next.state !== "joined") fail(`switch: ${next.topic} is ${next.state} after join ack`);
          if (prev.state !== "closed") fail(`switch: ${prev.topic} is ${prev.state} after handover`);
          if (socket.channels.length !== live) fail("switch: old version was not removed");
          current = next;
        }
      };
      const cleanup = () => {
        current.leave();
        conn.drain();
        if (current.state !== "closed") fail("switch: last version did not close");
      };
      return { run, cleanup };
    },
  },

  // Closest phoenix.js analogue of adding/removing a subscriber on a live
  // topic: a second on()/off() handler pair on an already-joined channel.
  // Purely client-side; no frames are exchanged.
  subunsub: {
    prepare(socket, ops) {
      const ch = socket.channels[socket.channels.length >> 1];
      if (!ch || ch.state !== "joined") fail("subunsub: needs a joined channel");
      let firstHits = 0;
      let extraHits = 0;
      const firstRef = ch.on("doc_update", () => firstHits++);
      const extra = () => extraHits++;
      const bindings = ch.bindings.length;
      const run = () => {
        for (let i = 0; i < ops; i++) {
          const ref = ch.on("doc_update", extra);
          ch.off("doc_update", ref);
        }
      };
      const cleanup = () => {
        if (ch.bindings.length !== bindings) fail("subunsub: handlers leaked");
        // A broadcast must reach the first handler only.
        socket.conn.inject([null, null, ch.topic, "doc_update", {}]);
        socket.conn.drain();
        if (firstHits !== 1 || extraHits !== 0) {
          fail(`subunsub: broadcast reached first=${firstHits} extra=${extraHits} handlers`);
        }
        ch.off("doc_update", firstRef);
      };
      return { run, cleanup };
    },
  },
};

// Sized for roughly 1-3 s per scenario on a small machine; lifecycle and
// switch ops scan every live channel several times, so they shrink with N.
function defaultOps(scenario, live, quick) {
  if (scenario === "subunsub") return quick ? 20_000 : 40_000_000;
  if (quick) return 200;
  return Math.max(500, Math.min(50_000, Math.round(3e7 / (live + 500))));
}

function measure(socket, name, ops, live, background) {
  const scenario = SCENARIOS[name];
  const warm = scenario.prepare(socket, Math.max(1, Math.min(ops, Math.ceil(ops / 10))));
  warm.run();
  warm.cleanup();
  checkLive(socket, live, background, `${name} warm-up`);

  const { run, cleanup } = scenario.prepare(socket, ops);
  globalThis.gc?.();
  const t0 = process.hrtime.bigint();
  run();
  const elapsed = process.hrtime.bigint() - t0;
  cleanup();
  checkLive(socket, live, background, name);
  return Number(elapsed);
}

function parseArgs(argv) {
  const opts = { live: [1000, 10000], ops: null, quick: false };
  const positiveInt = (flag, s) => {
    if (!/^\d+$/.test(s) || Number(s) < 1) fail(`${flag} expects positive integers, got ${JSON.stringify(s)}`);
    return Number(s);
  };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s);
    const takeValue = () => {
      if (value === undefined) value = argv[++i];
      if (value === undefined) fail(`${flag} needs a value`);
      return value;
    };
    switch (flag) {
      case "--live":
        opts.live = takeValue().split(",").map((s) => positiveInt(flag, s.trim()));
        break;
      case "--ops":
        opts.ops = positiveInt(flag, takeValue());
        break;
      case "--quick":
        opts.quick = true;
        break;
      case "-h":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      default:
        fail(`unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
    }
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { Socket, version } = await loadPhoenix();
  log(`phoenix.js ${version} on node ${process.version}; live=${opts.live.join(",")}${opts.quick ? " (quick)" : ""}`);
  const started = process.hrtime.bigint();

  for (const live of opts.live) {
    const socket = openSocket(Socket);
    const setupStart = process.hrtime.bigint();
    const background = joinBackground(socket, live);
    checkLive(socket, live, background, "setup");
    log(`live=${live}: joined background in ${ms(process.hrtime.bigint() - setupStart)}`);

    for (const name of Object.keys(SCENARIOS)) {
      const ops = opts.ops ?? defaultOps(name, live, opts.quick);
      const ns = measure(socket, name, ops, live, background);
      const nsPerOp = Math.round((ns / ops) * 10) / 10;
      process.stdout.write(
        `${JSON.stringify({ client: "phoenix.js", version, scenario: name, live, ops, ns_per_op: nsPerOp })}\n`,
      );
      log(`live=${live} ${name}: ${ops} ops in ${ms(ns)} -> ${nsPerOp} ns/op`);
    }

    socket.disconnect();
    if (socket.isConnected()) fail("socket did not disconnect");
    checkNoTimers(`live=${live}`);
  }
  log(`done in ${ms(process.hrtime.bigint() - started)}`);
}

run("churn.mjs", main);
