#!/usr/bin/env node
// The phoenix.js half of `cargo bench --bench session`: the official client
// doing the same per-channel lifecycle and per-message work as the pure
// session, over the fake transport `churn.mjs` uses, with the same timing
// scheme (warm-up, then rounds of a fixed time budget; the median round is
// the figure).
//
//   npm ci --prefix benches/phoenix-js      # once
//   node benches/phoenix-js/session.mjs [--live 1000,10000] [--scenarios lifecycle,message]
//                                       [--rounds R] [--round-ms MS] [--quick]
//
// stdout: one JSON object per measurement; stderr: progress.

import { randomUUID } from "node:crypto";

import { checkNoTimers, fail, loadPhoenix, log, ms, openSocket, run } from "./fake-transport.mjs";

const USAGE = `usage: node session.mjs [--live N[,N...]] [--scenarios S[,S...]] [--rounds R] [--round-ms MS] [--quick]
  --live       live channels per run (default 1000,10000)
  --scenarios  lifecycle, message (default both)
  --rounds     timed rounds per scenario; the median is reported (default 7)
  --round-ms   time budget of one round (default 300)
  --quick      one short round, for a smoke test`;

// Shared with benches/session.rs: the event and payload of every inbound
// message, the stride through the live channels, the ring of fresh topics.
const EVENT = "update";
const PAYLOAD = { body: "hello", n: 42 };
const STRIDE = 7919;
const FRESH = 4096;

const workflowTopic = (version) => `workflow:${randomUUID()}:v${version}`;

// The app's handlers: one function each, shared by every channel, so the
// harness allocates no closure per operation.
const app = { joined: 0, left: 0, messages: 0, sum: 0 };
const onJoined = () => {
  app.joined++;
};
const onLeft = () => {
  app.left++;
};
const onUpdate = (payload) => {
  app.messages++;
  app.sum += payload.n;
};

// `live` channels, joined, each with one handler for EVENT.
function joinLive(socket, live) {
  const chans = [];
  for (let i = 0; i < live; i++) {
    const ch = socket.channel(workflowTopic(1));
    ch.on(EVENT, onUpdate);
    ch.join().receive("ok", onJoined);
    chans.push(ch);
  }
  socket.conn.drain();
  for (const ch of chans) {
    if (ch.state !== "joined") fail(`live channel ${ch.topic} is ${ch.state}, not joined`);
  }
  return chans;
}

// Each scenario's prepare() does the untimed setup and returns `op(k)`,
// which does k operations, and `check(k)`, which proves k operations did
// their work.
const SCENARIOS = {
  // channel() + join() -> the join frame out, its ok reply in -> joined
  // (the app's "ok" hook runs); leave() -> the leave frame out (phoenix.js
  // closes and removes the channel inside leave(): the leave push is acked
  // locally as the channel is no longer "joined"); the server's leave reply
  // and phx_close in, scanned and dropped.
  lifecycle: {
    prepare(socket, live) {
      const topics = Array.from({ length: FRESH }, () => workflowTopic(2));
      const conn = socket.conn;
      let next = 0;
      const op = (k) => {
        for (let i = 0; i < k; i++) {
          const ch = socket.channel(topics[next]);
          next = next + 1 === FRESH ? 0 : next + 1;
          ch.join().receive("ok", onJoined);
          conn.drain();
          if (ch.state !== "joined") fail(`lifecycle: ${ch.topic} is ${ch.state} after join ack`);
          ch.leave().receive("ok", onLeft);
          conn.drain();
          if (ch.state !== "closed") fail(`lifecycle: ${ch.topic} is ${ch.state} after leave ack`);
          if (socket.channels.length !== live) fail("lifecycle: left channel was not removed");
        }
      };
      let before = { ...app };
      const check = (k) => {
        if (app.joined - before.joined !== k || app.left - before.left !== k) {
          fail(`lifecycle: ${k} ops ran ${app.joined - before.joined} join and ${app.left - before.left} leave hooks`);
        }
        before = { ...app };
      };
      return { op, check };
    },
  },

  // A server push `[join_ref, null, topic, EVENT, PAYLOAD]` for one live
  // channel, in a text frame -> decoded, matched to its channel, the one
  // handler called with the payload.
  message: {
    prepare(socket, live, chans) {
      const frames = chans.map((ch) => JSON.stringify([ch.joinRef(), null, ch.topic, EVENT, PAYLOAD]));
      let cursor = 0;
      const op = (k) => {
        for (let i = 0; i < k; i++) {
          socket.onConnMessage({ data: frames[cursor] });
          cursor = (cursor + STRIDE) % live;
        }
      };
      let before = { ...app };
      const check = (k) => {
        const n = app.messages - before.messages;
        const sum = app.sum - before.sum;
        if (n !== k || sum !== k * PAYLOAD.n) fail(`message: ${k} frames reached handlers ${n} times (sum ${sum})`);
        before = { ...app };
      };
      return { op, check };
    },
  },
};

// Warm-up for about one round, then `rounds` rounds of `roundMs` each, in
// batches of about a millisecond so reading the clock costs nothing; returns
// the wall-time and CPU-time ns per op of every round. CPU time is the
// process's (V8's compiler and collector threads included), and does not
// count time spent waiting for a core on a busy machine.
function measure(op, check, rounds, roundMs) {
  const budget = BigInt(roundMs) * 1_000_000n;
  let batch = 1;
  let ran = 0;
  const warmStart = process.hrtime.bigint();
  while (process.hrtime.bigint() - warmStart < budget) {
    op(batch);
    ran += batch;
    batch *= 2;
  }
  check(ran);
  const perOp = Number(process.hrtime.bigint() - warmStart) / ran;
  batch = Math.max(1, Math.round(1e6 / perOp));
  const results = [];
  for (let r = 0; r < rounds; r++) {
    let ops = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let elapsed = 0n;
    while (elapsed < budget) {
      op(batch);
      ops += batch;
      elapsed = process.hrtime.bigint() - t0;
    }
    const cpu = process.cpuUsage(cpu0);
    check(ops);
    results.push({ ns: Number(elapsed) / ops, cpu: ((cpu.user + cpu.system) * 1000) / ops, ops });
  }
  return results;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function parseArgs(argv) {
  const opts = { live: [1000, 10000], scenarios: Object.keys(SCENARIOS), rounds: 7, roundMs: 300 };
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
      case "--scenarios":
        opts.scenarios = takeValue().split(",").map((s) => s.trim());
        for (const s of opts.scenarios) if (!(s in SCENARIOS)) fail(`unknown scenario ${JSON.stringify(s)}\n${USAGE}`);
        break;
      case "--rounds":
        opts.rounds = positiveInt(flag, takeValue());
        break;
      case "--round-ms":
        opts.roundMs = positiveInt(flag, takeValue());
        break;
      case "--quick":
        opts.rounds = 1;
        opts.roundMs = 20;
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
  log(`phoenix.js ${version} on node ${process.version}; live=${opts.live.join(",")}`);
  const started = process.hrtime.bigint();

  for (const live of opts.live) {
    const socket = openSocket(Socket);
    const setupStart = process.hrtime.bigint();
    const chans = joinLive(socket, live);
    log(`live=${live}: joined in ${ms(process.hrtime.bigint() - setupStart)}`);

    for (const name of opts.scenarios) {
      const { op, check } = SCENARIOS[name].prepare(socket, live, chans);
      const rounds = measure(op, check, opts.rounds, opts.roundMs);
      const ns = rounds.map((r) => r.ns);
      const row = {
        client: "phoenix.js",
        version,
        scenario: name,
        live,
        ns_per_op: median(ns),
        min: Math.min(...ns),
        max: Math.max(...ns),
        rounds: ns,
        cpu_rounds: rounds.map((r) => r.cpu),
        ops: rounds.reduce((a, r) => a + r.ops, 0),
      };
      process.stdout.write(`${JSON.stringify(row)}\n`);
      log(`live=${live} ${name}: ${row.ns_per_op.toFixed(1)} ns/op (${row.min.toFixed(1)}..${row.max.toFixed(1)}), cpu ${median(row.cpu_rounds).toFixed(1)} ns/op`);
      if (socket.channels.length !== live) fail(`${name}: ${socket.channels.length} channels left, expected ${live}`);
      for (const ch of chans) if (ch.state !== "joined") fail(`${name}: live channel ${ch.topic} is ${ch.state}`);
    }

    socket.disconnect();
    if (socket.isConnected()) fail("socket did not disconnect");
    checkNoTimers(`live=${live}`);
  }
  log(`done in ${ms(process.hrtime.bigint() - started)}`);
}

run("session.mjs", main);
