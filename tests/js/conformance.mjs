// Conformance of the dev server with the official phoenix.js client.
//
// Usage: node conformance.mjs ws://127.0.0.1:PORT/socket
//
// Prints one line per check and a final "N passed, M failed"; exits non-zero on any failure.
// The server is expected to run with its built-in routes and short timings (a sync push a few
// ms after a room join). Checks that need the server to act (push an event, close every
// socket, list its sockets) ask the runner: `@@steer {json}` on stdout, the answer as one
// JSON line on stdin (tests/phoenix_js_conformance.rs).

import { createInterface } from "node:readline"
import { isDeepStrictEqual } from "node:util"
import { Presence, Socket } from "phoenix"
import WebSocket from "ws"

const url = process.argv[2]
if (!url) {
  console.error("usage: node conformance.mjs ws://127.0.0.1:PORT/socket")
  process.exit(2)
}

/** Upper bound for anything a check waits for; reached only when the check fails. */
const WAIT_MS = 3000

const sockets = []
let passed = 0
let failed = 0

function connect(opts = {}) {
  const socket = new Socket(url, {
    transport: WebSocket,
    timeout: 1000,
    rejoinAfterMs: () => 50,
    reconnectAfterMs: () => 50,
    ...opts,
  })
  socket.connect()
  sockets.push(socket)
  return socket
}

/** A promise settled by `executor`, rejected with a clear message after `ms`. */
function within(ms, what, executor) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    executor(
      value => { clearTimeout(timer); resolve(value) },
      error => { clearTimeout(timer); reject(error) },
    )
  })
}

/** Join and resolve with the ok response; reject on error or timeout. */
function joinOk(channel) {
  return within(WAIT_MS, `the join of ${channel.topic}`, (resolve, reject) => {
    channel.join()
      .receive("ok", resolve)
      .receive("error", resp => reject(new Error(`join of ${channel.topic} refused: ${JSON.stringify(resp)}`)))
      .receive("timeout", () => reject(new Error(`join of ${channel.topic} timed out`)))
  })
}

/** Push and resolve with {status, response}, whatever the status. */
function pushed(channel, event, payload, timeout) {
  return within(WAIT_MS, `the reply to ${event} on ${channel.topic}`, resolve => {
    channel.push(event, payload, timeout)
      .receive("ok", response => resolve({ status: "ok", response }))
      .receive("error", response => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout" }))
  })
}

function nextEvent(channel, event) {
  return within(WAIT_MS, `${event} on ${channel.topic}`, resolve => {
    const ref = channel.on(event, payload => { channel.off(event, ref); resolve(payload) })
  })
}

const answers = createInterface({ input: process.stdin })
const waitingForAnswers = []
answers.on("line", line => {
  const resolve = waitingForAnswers.shift()
  if (resolve) resolve(JSON.parse(line))
})

/** Ask the runner to act on the server; resolve with its answer. */
function steer(request) {
  return within(WAIT_MS, `the runner's answer to ${JSON.stringify(request)}`, (resolve, reject) => {
    waitingForAnswers.push(answer => answer.error ? reject(new Error(answer.error)) : resolve(answer))
    console.log(`@@steer ${JSON.stringify(request)}`)
  })
}

/** Resolve once `predicate()` holds, checked every few ms. */
function eventually(what, predicate) {
  return within(WAIT_MS, what, resolve => {
    const poll = () => predicate() ? resolve() : setTimeout(poll, 5)
    poll()
  })
}

function assert(condition, message) {
  if (!condition) throw new Error(message)
}

function assertEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

function bytes(buffer) {
  assert(buffer instanceof ArrayBuffer, `expected an ArrayBuffer, got ${Object.prototype.toString.call(buffer)}`)
  return Array.from(new Uint8Array(buffer))
}

/** Resolve once the presence list satisfies `predicate`, checked on every sync. */
function presenceWaiter(presence) {
  const waiters = new Set()
  presence.onSync(() => {
    for (const waiter of waiters) waiter()
  })
  const keys = () => presence.list(id => id).sort()
  return (what, predicate) => within(WAIT_MS, what, resolve => {
    const waiter = () => {
      if (predicate(keys())) { waiters.delete(waiter); resolve(keys()) }
    }
    waiters.add(waiter)
    waiter()
  })
}

async function check(name, body) {
  try {
    await body()
    passed++
    console.log(`ok - ${name}`)
  } catch (error) {
    failed++
    console.log(`FAIL - ${name}: ${error && error.message ? error.message : error}`)
  }
}

const main = connect()

await check("join ok carries the join reply, then the sync push", async () => {
  const channel = main.channel("room:js", { n: 1 })
  const sync = nextEvent(channel, "sync")
  const response = await joinOk(channel)
  assertEqual(response, { joined: "room:js", params: { n: 1 } }, "join response")
  assertEqual(channel.state, "joined", "channel state")
  assertEqual(await sync, { seq: 1 }, "sync payload")
})

await check("join error carries the refusal", async () => {
  const channel = main.channel("fail:js")
  const response = await within(WAIT_MS, "the join refusal", (resolve, reject) => {
    channel.join()
      .receive("ok", () => reject(new Error("the join of fail:js succeeded")))
      .receive("error", resolve)
  })
  assertEqual(response, { reason: "unauthorized" }, "error response")
  channel.leave() // stop phoenix.js from retrying
})

await check("push gets its reply", async () => {
  const channel = main.channel("room:push")
  await joinOk(channel)
  assertEqual(await pushed(channel, "echo", { x: 1 }), { status: "ok", response: { x: 1 } }, "echo reply")
})

await check("push to a handler that never replies times out", async () => {
  const channel = main.channel("silent:js")
  await joinOk(channel)
  const started = Date.now()
  const result = await pushed(channel, "anything", {}, 200)
  assertEqual(result, { status: "timeout" }, "push outcome")
  assert(Date.now() - started >= 190, `timed out too early, after ${Date.now() - started} ms`)
})

await check("leave is acknowledged and closes the channel", async () => {
  const channel = main.channel("room:leave")
  await joinOk(channel)
  const closed = within(WAIT_MS, "onClose of room:leave", resolve => channel.onClose(resolve))
  const status = await within(WAIT_MS, "the leave reply", resolve => {
    channel.leave().receive("ok", () => resolve("ok")).receive("timeout", () => resolve("timeout"))
  })
  assertEqual(status, "ok", "leave outcome")
  await closed
  assertEqual(channel.state, "closed", "channel state")
})

await check("broadcast reaches every member on two sockets", async () => {
  const other = connect()
  const a = main.channel("room:bc")
  const b = other.channel("room:bc")
  await joinOk(a)
  await joinOk(b)
  const gotA = nextEvent(a, "msg")
  const gotB = nextEvent(b, "msg")
  assertEqual(await pushed(a, "broadcast", { hi: 1 }), { status: "ok", response: {} }, "broadcast reply")
  assertEqual(await gotA, { hi: 1 }, "sender's copy")
  assertEqual(await gotB, { hi: 1 }, "other socket's copy")
})

await check("a second channel object for a joined topic closes the first", async () => {
  const first = main.channel("room:dupjs")
  await joinOk(first)
  const closed = within(WAIT_MS, "onClose of the first channel", resolve => first.onClose(resolve))
  const second = main.channel("room:dupjs")
  await joinOk(second)
  await closed
  assertEqual(first.state, "closed", "first channel state")
  assertEqual(second.state, "joined", "second channel state")
  assertEqual(await pushed(second, "echo", { v: 2 }), { status: "ok", response: { v: 2 } }, "echo on the second")
})

await check("a crash errors the channel and it rejoins", async () => {
  const channel = main.channel("crash:js")
  let joins = 0
  let rejoined
  const rejoin = new Promise(resolve => { rejoined = resolve })
  const errored = within(WAIT_MS, "onError of crash:js", resolve => channel.onError(resolve))
  await within(WAIT_MS, "the first join of crash:js", resolve => {
    channel.join().receive("ok", () => {
      joins++
      if (joins === 1) resolve()
      if (joins === 2) rejoined()
    })
  })
  channel.push("boom", {})
  await errored
  await within(WAIT_MS, "the rejoin of crash:js", resolve => rejoin.then(resolve))
  assertEqual(channel.state, "joined", "channel state after the rejoin")
  assertEqual(await pushed(channel, "echo", { after: "crash" }), { status: "ok", response: { after: "crash" } }, "echo")
})

await check("presence syncs the state and applies diffs", async () => {
  const other = connect()
  const alice = main.channel("presence:js", { user: "alice" })
  const presence = new Presence(alice)
  const until = presenceWaiter(presence)
  await joinOk(alice)
  assertEqual(await until("alice in the presence state", keys => keys.includes("alice")), ["alice"], "after alice joined")

  const bob = other.channel("presence:js", { user: "bob" })
  await joinOk(bob)
  assertEqual(await until("bob's join diff", keys => keys.includes("bob")), ["alice", "bob"], "after bob joined")
  const metas = presence.list((id, { metas }) => metas).flat()
  assert(metas.every(meta => typeof meta.phx_ref === "string"), "every meta carries a phx_ref")

  bob.leave()
  assertEqual(await until("bob's leave diff", keys => !keys.includes("bob")), ["alice"], "after bob left")
})

await check("binary push gets a binary reply and binary broadcasts", async () => {
  const other = connect()
  const a = main.channel("room:bin")
  const b = other.channel("room:bin")
  await joinOk(a)
  await joinOk(b)
  const reply = await pushed(a, "echo", new Uint8Array([1, 2, 3, 255]).buffer)
  assertEqual(reply.status, "ok", "reply status")
  assertEqual(bytes(reply.response), [1, 2, 3, 255], "reply bytes")

  const gotB = nextEvent(b, "msg")
  await pushed(a, "broadcast", new Uint8Array([9, 8]).buffer)
  assertEqual(bytes(await gotB), [9, 8], "broadcast bytes")
})

await check("heartbeats are answered", async () => {
  const socket = connect({ heartbeatIntervalMs: 100 })
  const reply = await within(WAIT_MS, "a heartbeat reply", resolve => {
    socket.onMessage(msg => {
      if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.payload.status === "ok") resolve(msg)
    })
  })
  assertEqual(reply.join_ref, null, "heartbeat reply join_ref")
  const rtt = await within(WAIT_MS, "a ping reply", resolve => {
    const tryPing = () => { if (!socket.ping(resolve)) setTimeout(tryPing, 10) }
    tryPing()
  })
  assert(typeof rtt === "number" && rtt >= 0, `ping rtt ${rtt}`)
  assert(socket.isConnected(), "the socket is still connected")
})

await check("presence calls onJoin, onLeave and onSync with their arguments", async () => {
  const other = connect()
  const carol = main.channel("presence:callbacks", { user: "carol" })
  const presence = new Presence(carol)
  const calls = []
  const count = entry => entry ? entry.metas.length : null
  presence.onJoin((key, current, joined) => calls.push(["join", key, count(current), count(joined)]))
  presence.onLeave((key, current, left) => calls.push(["leave", key, count(current), count(left)]))
  presence.onSync(() => calls.push(["sync", presence.list(key => key).sort()]))
  const syncs = () => calls.filter(([kind]) => kind === "sync").length

  await joinOk(carol)
  await eventually("carol's first sync", () => syncs() === 1)
  // The diff announcing carol arrives before her state: it waits, and is applied right after
  // the state, joining carol's known connection again.
  assertEqual(calls.splice(0), [["join", "carol", null, 1], ["join", "carol", 1, 1], ["sync", ["carol"]]], "on join")

  const dave = other.channel("presence:callbacks", { user: "dave" })
  await joinOk(dave)
  await eventually("dave's join diff", () => syncs() === 1)
  assertEqual(calls.splice(0), [["join", "dave", null, 1], ["sync", ["carol", "dave"]]], "dave joined")

  dave.leave()
  await eventually("dave's leave diff", () => syncs() === 1)
  assertEqual(calls.splice(0), [["leave", "dave", 0, 1], ["sync", ["carol"]]], "dave left")
})

await check("channel.on gets only its event; onMessage sees every event", async () => {
  const channel = main.channel("room:filterjs")
  await joinOk(channel)
  const onlyA = []
  const every = []
  channel.on("a", payload => onlyA.push(payload.n))
  const onMessage = channel.onMessage
  channel.onMessage = (event, payload, ref) => {
    if (["a", "b", "c"].includes(event)) every.push(event)
    return onMessage.call(channel, event, payload, ref)
  }
  for (const [n, event] of ["a", "b", "a", "c", "a"].entries()) {
    assertEqual(await steer({ op: "push", topic: "room:filterjs", event, payload: { n } }), { addressed: 1 }, "push addressed")
  }
  await eventually("the last `a`", () => onlyA.includes(4))
  assertEqual(onlyA, [0, 2, 4], "events seen by channel.on(\"a\")")
  assertEqual(every, ["a", "b", "a", "c", "a"], "events seen by onMessage")
})

await check("authToken travels in Sec-WebSocket-Protocol, not in the URL", async () => {
  const socket = connect({ authToken: "js-t0k3n", params: { room: "1" } })
  await joinOk(socket.channel("room:authjs"))
  const { sockets: connected } = await steer({ op: "sockets" })
  const mine = connected.filter(s => s.auth_token === "js-t0k3n")
  assertEqual(mine.length, 1, "sockets with the token")
  assert(mine[0].params.some(([name, value]) => name === "room" && value === "1"), "params still in the URL")
  assert(mine[0].params.every(([, value]) => !value.includes("t0k3n")), "the token is not in the URL")
  socket.disconnect()
})

/** Close every socket with `code`; the channel of a fresh socket rejoins with a new join_ref. */
async function rejoinsAfterClose(code, topic) {
  const socket = connect()
  const channel = socket.channel(topic)
  let oks = 0
  let rejoined
  const rejoin = new Promise(resolve => { rejoined = resolve })
  await within(WAIT_MS, `the first join of ${topic}`, resolve => {
    channel.join().receive("ok", () => {
      oks++
      if (oks === 1) resolve()
      if (oks === 2) rejoined()
    })
  })
  const firstJoinRef = channel.joinRef()
  const closed = within(WAIT_MS, `the close event (${code})`, resolve => socket.onClose(resolve))
  const { addressed } = await steer({ op: "close_all_sockets", code, reason: "steered" })
  assert(addressed >= 1, `sockets closed: ${addressed}`)
  assertEqual((await closed).code, code, "close code seen by phoenix.js")
  await within(WAIT_MS, `the rejoin of ${topic}`, resolve => rejoin.then(resolve))
  assert(channel.joinRef() !== firstJoinRef, "the rejoin has a new join_ref")
  assertEqual(await pushed(channel, "echo", { code }), { status: "ok", response: { code } }, "echo after the rejoin")
  socket.disconnect()
}

await check("a server close with 1012 (restart) reconnects and rejoins", async () => {
  await rejoinsAfterClose(1012, "room:restart")
})

// phoenix.js 1.8.16 reconnects after any close it did not ask for, 1000 included (proxies and
// load balancers close with 1000 too).
await check("a server close with 1000 (normal) also reconnects and rejoins", async () => {
  await rejoinsAfterClose(1000, "room:normal")
})

answers.close()
for (const socket of sockets) socket.disconnect()
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
