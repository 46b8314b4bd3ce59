// Replays presence message sequences through the official phoenix.js `Presence`.
//
// Usage: node presence_replay.mjs CASES.json
//
// CASES.json is an array of cases:
//   {"events": null | {"state": "...", "diff": "..."}, "steps": [step, ...]}
// where a step is either {"join": "REF"} (the channel sent a phx_join with that ref) or
// {"frame": "[join_ref, ref, topic, event, payload]"} (a text frame from the server).
//
// Each case gets a fresh phoenix.js Socket (never connected) and Channel; frames go through the
// socket's own decoding and routing (`onConnMessage`, `Channel.isMember`, `Channel.trigger`), so
// stale join_refs are dropped exactly as in a browser. After every step the script records
//   {"list": [[key, presence], ...], "events": [...], "synced": bool}
// where events are the callbacks fired by that step: ["join", key, current|null, joined],
// ["leave", key, current, left] or ["sync"], each argument copied when it was passed.
// Prints one JSON array (per case, per step) on stdout.

import { readFileSync } from "node:fs"
import { Presence, Socket } from "phoenix"

const TOPIC = "presence:replay"

const path = process.argv[2]
if (!path) {
  console.error("usage: node presence_replay.mjs CASES.json")
  process.exit(2)
}

/** A deep copy taken when a callback runs, as the application would see it then. */
const snapshot = value => (value === undefined ? null : JSON.parse(JSON.stringify(value)))

/** A transport that is never opened: frames are fed to the socket directly. */
class NoTransport {}

function replay({ events, steps }) {
  const socket = new Socket("ws://replay.invalid/socket", { transport: NoTransport })
  const channel = socket.channel(TOPIC)
  const presence = new Presence(channel, events ? { events } : {})
  let fired = []
  presence.onJoin((key, current, joined) => fired.push(["join", key, snapshot(current), snapshot(joined)]))
  presence.onLeave((key, current, left) => fired.push(["leave", key, snapshot(current), snapshot(left)]))
  presence.onSync(() => fired.push(["sync"]))

  return steps.map(step => {
    fired = []
    if (step.join !== undefined) {
      // What `channel.join()` / `rejoin()` does to the ref without sending anything.
      channel.joinPush.ref = step.join
    } else {
      socket.onConnMessage({ data: step.frame })
    }
    return {
      list: presence.list((key, entry) => [key, snapshot(entry)]),
      events: fired,
      synced: !presence.inPendingSyncState(),
    }
  })
}

const cases = JSON.parse(readFileSync(path, "utf8"))
process.stdout.write(JSON.stringify(cases.map(replay)))
