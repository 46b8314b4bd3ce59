//! The phoenix.js rules one by one. `tests/presence_differential.rs` checks
//! the same against phoenix.js itself on generated sequences.

use serde_json::{json, Value};

use super::*;

const STATE: &str = "presence_state";
const DIFF: &str = "presence_diff";

fn synced(join_ref: &str, state: Value) -> Presence {
    let mut presence = Presence::new(PresenceConfig::default());
    presence.handle_join(join_ref);
    assert_eq!(
        presence.handle_message(Some(join_ref), STATE, &state),
        Ok(Handled::Applied)
    );
    drain(&mut presence);
    presence
}

fn drain(presence: &mut Presence) -> Vec<PresenceEvent> {
    std::iter::from_fn(|| presence.poll_event()).collect()
}

/// The list as JSON pairs `[key, entry]`, as phoenix.js `list((k, p) => [k, p])`.
fn listed(presence: &Presence) -> Value {
    Value::Array(presence.list_by(|key, entry| json!([key, entry.to_value()])))
}

fn keys(presence: &Presence) -> Vec<&str> {
    presence.iter().map(|(key, _)| key).collect()
}

fn entry(value: Value) -> PresenceEntry {
    let presences = payload::parse_state(STATE, &json!({ "k": value })).expect("a valid entry");
    presences.into_iter().next().expect("one entry").1
}

fn join(key: &str, current: Option<Value>, joined: Value) -> PresenceEvent {
    PresenceEvent::Join {
        key: key.to_owned(),
        current: current.map(entry),
        joined: entry(joined),
    }
}

fn leave(key: &str, current: Value, left: Value) -> PresenceEvent {
    PresenceEvent::Leave {
        key: key.to_owned(),
        current: entry(current),
        left: entry(left),
    }
}

fn metas(refs: &[&str]) -> Value {
    json!({ "metas": refs.iter().map(|r| json!({ "phx_ref": r })).collect::<Vec<_>>() })
}

fn diff(joins: Value, leaves: Value) -> Value {
    json!({ "joins": joins, "leaves": leaves })
}

#[test]
fn phoenix_order_on_join_the_own_diff_precedes_the_state() {
    // Observed on a real Phoenix server: the ok reply, then the diff that
    // announces the joiner, then the state pushed to the joiner.
    let mut presence = Presence::new(PresenceConfig::default());
    presence.handle_join("1");
    let me = json!({"metas": [{"online_at": 1_795_343_153, "phx_ref": "GOpX"}]});
    assert_eq!(
        presence.handle_message(None, DIFF, &diff(json!({ "alice": me }), json!({}))),
        Ok(Handled::Buffered)
    );
    assert!(presence.is_empty());
    assert_eq!(presence.poll_event(), None);
    assert!(!presence.is_synced());

    assert_eq!(
        presence.handle_message(Some("1"), STATE, &json!({ "alice": me })),
        Ok(Handled::Applied)
    );
    assert!(presence.is_synced());
    assert_eq!(listed(&presence), json!([["alice", me]]));
    // The state's join, then the buffered diff's (phoenix.js reports it again,
    // with the entry it already had), then one sync.
    assert_eq!(
        drain(&mut presence),
        [
            join("alice", None, me.clone()),
            join("alice", Some(me.clone()), me.clone()),
            PresenceEvent::Sync,
        ]
    );

    // Now synced: diffs apply at once.
    let bob = metas(&["GOpY"]);
    assert_eq!(
        presence.handle_message(None, DIFF, &diff(json!({ "bob": bob }), json!({}))),
        Ok(Handled::Applied)
    );
    assert_eq!(
        drain(&mut presence),
        [join("bob", None, bob.clone()), PresenceEvent::Sync]
    );
    assert_eq!(
        presence.handle_message(None, DIFF, &diff(json!({}), json!({ "bob": bob }))),
        Ok(Handled::Applied)
    );
    assert_eq!(
        drain(&mut presence),
        [leave("bob", json!({"metas": []}), bob), PresenceEvent::Sync]
    );
    assert_eq!(keys(&presence), ["alice"]);
}

#[test]
fn buffered_diffs_apply_in_order_after_the_state() {
    let mut presence = Presence::new(PresenceConfig::default());
    presence.handle_join("1");
    let steps = [
        diff(json!({"a": metas(&["1"])}), json!({})),
        diff(json!({"b": metas(&["2"])}), json!({})),
        diff(json!({}), json!({"a": metas(&["1"])})),
    ];
    for step in &steps {
        assert_eq!(
            presence.handle_message(None, DIFF, step),
            Ok(Handled::Buffered)
        );
    }
    assert_eq!(
        presence.handle_message(Some("1"), STATE, &json!({"c": metas(&["3"])})),
        Ok(Handled::Applied)
    );
    assert_eq!(keys(&presence), ["c", "b"]);
    assert_eq!(
        drain(&mut presence),
        [
            join("c", None, metas(&["3"])),
            join("a", None, metas(&["1"])),
            join("b", None, metas(&["2"])),
            leave("a", json!({"metas": []}), metas(&["1"])),
            PresenceEvent::Sync,
        ]
    );
}

#[test]
fn a_rejoin_buffers_until_its_own_state_and_reports_only_the_differences() {
    let mut presence = synced("1", json!({"alice": metas(&["a1"]), "bob": metas(&["b1"])}));
    presence.handle_join("5");
    assert!(!presence.is_synced());
    assert_eq!(
        keys(&presence),
        ["alice", "bob"],
        "the old list stays meanwhile"
    );

    // A diff now waits, even one that reaches us before the state.
    let carol = metas(&["c1"]);
    assert_eq!(
        presence.handle_message(None, DIFF, &diff(json!({ "carol": carol }), json!({}))),
        Ok(Handled::Buffered)
    );
    // A late state of the old join is stale.
    assert_eq!(
        presence.handle_message(Some("1"), STATE, &json!({})),
        Ok(Handled::Stale)
    );
    assert_eq!(presence.poll_event(), None);

    // While we were away bob left and alice opened a second tab.
    let new_state = json!({"alice": metas(&["a1", "a2"])});
    assert_eq!(
        presence.handle_message(Some("5"), STATE, &new_state),
        Ok(Handled::Applied)
    );
    assert!(presence.is_synced());
    assert_eq!(
        drain(&mut presence),
        [
            join("alice", Some(metas(&["a1"])), metas(&["a2"])),
            leave("bob", json!({"metas": []}), metas(&["b1"])),
            join("carol", None, carol),
            PresenceEvent::Sync,
        ]
    );
    assert_eq!(keys(&presence), ["alice", "carol"]);
}

#[test]
fn a_state_keeps_known_connections_first_and_ignores_their_new_metas() {
    let mut presence = synced(
        "1",
        json!({"u": {"metas": [{"phx_ref": "1", "v": 1}, {"phx_ref": "2"}], "name": "old"}}),
    );
    presence.handle_join("2");
    let state =
        json!({"u": {"metas": [{"phx_ref": "3"}, {"phx_ref": "1", "v": 2}], "name": "new"}});
    assert_eq!(
        presence.handle_message(Some("2"), STATE, &state),
        Ok(Handled::Applied)
    );
    assert_eq!(
        listed(&presence),
        json!([["u", {"metas": [{"phx_ref": "1", "v": 1}, {"phx_ref": "3"}], "name": "new"}]])
    );
    assert_eq!(
        drain(&mut presence),
        [
            join(
                "u",
                Some(json!({"metas": [{"phx_ref": "1", "v": 1}, {"phx_ref": "2"}], "name": "old"})),
                json!({"metas": [{"phx_ref": "3"}], "name": "new"}),
            ),
            leave(
                "u",
                json!({"metas": [{"phx_ref": "1", "v": 1}, {"phx_ref": "3"}], "name": "new"}),
                json!({"metas": [{"phx_ref": "2"}], "name": "old"}),
            ),
            PresenceEvent::Sync,
        ]
    );
}

#[test]
fn a_diff_joining_and_leaving_one_key_is_an_update() {
    // Phoenix.Presence.update: the new meta joins (with phx_ref_prev), the
    // old one leaves, in one diff.
    let mut presence = synced(
        "1",
        json!({"u": {"metas": [{"phx_ref": "1", "status": "away"}]}}),
    );
    let updated = json!({"metas": [{"phx_ref": "2", "phx_ref_prev": "1", "status": "busy"}]});
    let step = diff(
        json!({ "u": updated }),
        json!({"u": {"metas": [{"phx_ref": "1", "status": "away"}]}}),
    );
    assert_eq!(
        presence.handle_message(None, DIFF, &step),
        Ok(Handled::Applied)
    );
    assert_eq!(listed(&presence), json!([["u", updated]]));
    assert_eq!(
        presence
            .get("u")
            .and_then(|e| e.metas()[0].get("phx_ref_prev")),
        Some(&json!("1"))
    );
    let events = drain(&mut presence);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[1],
        leave(
            "u",
            updated,
            json!({"metas": [{"phx_ref": "1", "status": "away"}]})
        )
    );
}

#[test]
fn leaves_of_unknown_keys_are_ignored_and_of_unknown_refs_still_reported() {
    let mut presence = synced("1", json!({"a": metas(&["1"])}));
    let step = diff(
        json!({}),
        json!({"ghost": metas(&["9"]), "a": metas(&["9"])}),
    );
    assert_eq!(
        presence.handle_message(None, DIFF, &step),
        Ok(Handled::Applied)
    );
    assert_eq!(
        drain(&mut presence),
        [
            leave("a", metas(&["1"]), metas(&["9"])),
            PresenceEvent::Sync
        ]
    );
    assert_eq!(keys(&presence), ["a"]);
}

#[test]
fn a_key_joined_without_metas_stays_until_a_leave_touches_it() {
    let mut presence = synced("1", json!({}));
    let step = diff(json!({"empty": {"metas": []}}), json!({}));
    assert_eq!(
        presence.handle_message(None, DIFF, &step),
        Ok(Handled::Applied)
    );
    assert_eq!(keys(&presence), ["empty"]);
    let step = diff(json!({}), json!({"empty": {"metas": []}}));
    assert_eq!(
        presence.handle_message(None, DIFF, &step),
        Ok(Handled::Applied)
    );
    assert!(presence.is_empty());
}

#[test]
fn keys_are_listed_in_javascript_object_order() {
    let state =
        json!({"b": metas(&["1"]), "10": metas(&["2"]), "9": metas(&["3"]), "007": metas(&["4"])});
    let mut presence = synced("1", state);
    // Sorted payload keys ("007", "10", "9", "b") rearranged as JavaScript
    // does: array indices ascending first.
    assert_eq!(keys(&presence), ["9", "10", "007", "b"]);

    // A name that leaves and comes back goes to the end; an index does not.
    for (joins, leaves) in [
        (json!({}), json!({"007": metas(&["4"]), "9": metas(&["3"])})),
        (
            json!({"007": metas(&["5"]), "9": metas(&["6"]), "0": metas(&["7"])}),
            json!({}),
        ),
    ] {
        assert_eq!(
            presence.handle_message(None, DIFF, &diff(joins, leaves)),
            Ok(Handled::Applied)
        );
    }
    assert_eq!(keys(&presence), ["0", "9", "10", "b", "007"]);
}

#[test]
fn list_and_list_by_use_the_same_order() {
    let presence = synced("1", json!({"x": metas(&["1"]), "y": metas(&["2", "3"])}));
    let listed: Vec<(String, usize)> = presence
        .list()
        .into_iter()
        .map(|(key, entry)| (key, entry.metas().len()))
        .collect();
    assert_eq!(listed, [("x".to_owned(), 1), ("y".to_owned(), 2)]);
    assert_eq!(presence.list_by(|key, _| key.len()), [1, 1]);
    assert_eq!(presence.len(), 2);
    assert_eq!(presence.get("y").map(|e| e.metas()[1].phx_ref()), Some("3"));
}

#[test]
fn event_names_are_configurable() {
    let mut presence = Presence::new(PresenceConfig::with_events("state", "diff"));
    presence.handle_join("1");
    let state = json!({"a": metas(&["1"])});
    assert_eq!(
        presence.handle_message(Some("1"), STATE, &state),
        Ok(Handled::Unrelated)
    );
    assert_eq!(
        presence.handle_message(Some("1"), "state", &state),
        Ok(Handled::Applied)
    );
    assert_eq!(
        presence.handle_message(
            None,
            "diff",
            &diff(json!({}), json!({ "a": metas(&["1"]) }))
        ),
        Ok(Handled::Applied)
    );
    assert!(presence.is_empty());
}

#[test]
fn unrelated_events_change_nothing_even_with_odd_payloads() {
    let mut presence = synced("1", json!({"a": metas(&["1"])}));
    let before = presence.clone();
    for event in ["phx_reply", "new_msg", "phx_close"] {
        assert_eq!(
            presence.handle_message(Some("1"), event, &json!(null)),
            Ok(Handled::Unrelated)
        );
    }
    assert_eq!(presence, before);
}

#[test]
fn messages_of_another_join_are_stale_and_unstamped_ones_are_not() {
    let mut presence = Presence::new(PresenceConfig::default());
    // Before any join, a stamped message belongs to nobody.
    assert_eq!(
        presence.handle_message(Some("1"), STATE, &json!({})),
        Ok(Handled::Stale)
    );
    presence.handle_join("2");
    assert_eq!(
        presence.handle_message(Some("1"), DIFF, &diff(json!({}), json!({}))),
        Ok(Handled::Stale)
    );
    // An empty join_ref counts as none (phoenix.js `Channel.isMember`).
    assert_eq!(
        presence.handle_message(Some(""), STATE, &json!({"a": metas(&["1"])})),
        Ok(Handled::Applied)
    );
    assert!(presence.is_synced());
}

#[test]
fn a_state_without_a_join_never_counts_as_synced() {
    // phoenix.js: the state records `channel.joinRef()`, null before a join,
    // so diffs keep waiting for a state taken after a join.
    let mut presence = Presence::new(PresenceConfig::default());
    assert_eq!(
        presence.handle_message(None, STATE, &json!({"a": metas(&["1"])})),
        Ok(Handled::Applied)
    );
    assert!(!presence.is_synced());
    assert_eq!(
        presence.handle_message(None, DIFF, &diff(json!({"b": metas(&["2"])}), json!({}))),
        Ok(Handled::Buffered)
    );
    assert_eq!(keys(&presence), ["a"]);
}

#[test]
fn malformed_payloads_are_typed_errors_that_change_nothing() {
    let mut presence = synced("1", json!({"a": metas(&["1"])}));
    let cases = [
        (STATE, json!([]), "", "an array"),
        (STATE, json!({"a": 1}), "/a", "a number"),
        (STATE, json!({"a": {}}), "/a/metas", "nothing"),
        (STATE, json!({"a": {"metas": {}}}), "/a/metas", "an object"),
        (STATE, json!({"a": {"metas": [null]}}), "/a/metas/0", "null"),
        (
            STATE,
            json!({"a": {"metas": [{"phx_ref": "1"}, {}]}}),
            "/a/metas/1/phx_ref",
            "nothing",
        ),
        (
            STATE,
            json!({"x/y~": {"metas": [{"phx_ref": 7}]}}),
            "/x~1y~0/metas/0/phx_ref",
            "a number",
        ),
        (DIFF, json!("joins"), "", "a string"),
        (DIFF, json!({"leaves": {}}), "/joins", "nothing"),
        (
            DIFF,
            json!({"joins": {}, "leaves": []}),
            "/leaves",
            "an array",
        ),
        (
            DIFF,
            json!({"joins": {"b": {"metas": [{"phx_ref": "2"}]}}, "leaves": {"a": {"metas": 3}}}),
            "/leaves/a/metas",
            "a number",
        ),
    ];
    let before = presence.clone();
    for (event, payload, pointer, found) in cases {
        match presence.handle_message(Some("1"), event, &payload) {
            Err(PresenceError::Malformed {
                event: e,
                pointer: p,
                found: f,
                ..
            }) => {
                assert_eq!(
                    (e.as_str(), p.as_str(), f),
                    (event, pointer, found),
                    "{payload}"
                );
            }
            other => panic!("{payload}: expected a malformed-payload error, got {other:?}"),
        }
        assert_eq!(presence, before, "{payload} changed the presence");
    }
    // Buffered diffs are checked on arrival, not when the state comes.
    presence.handle_join("2");
    let before = presence.clone();
    assert!(presence
        .handle_message(None, DIFF, &json!({"joins": {}}))
        .is_err());
    assert_eq!(presence, before);
}

#[test]
fn error_messages_say_where_and_what_to_do() {
    let mut presence = Presence::new(PresenceConfig::default());
    let error = presence
        .handle_message(None, STATE, &json!({"a": {"metas": [{}]}}))
        .expect_err("malformed");
    assert_eq!(
        error.to_string(),
        "malformed presence_state payload: `/a/metas/0/phx_ref` must be a string, found nothing; \
         the message was ignored (does the server send Phoenix.Presence payloads on this event? \
         if not, configure other event names in PresenceConfig)"
    );
    let error = presence
        .handle_message(None, STATE, &json!(1))
        .expect_err("malformed");
    assert!(
        error.to_string().contains("the payload must be an object"),
        "{error}"
    );
}

#[test]
fn pending_diffs_are_bounded() {
    let config = PresenceConfig {
        max_pending_diffs: 2,
        ..PresenceConfig::default()
    };
    let mut presence = Presence::new(config);
    presence.handle_join("1");
    let step = |r: &str| diff(json!({ r: metas(&[r]) }), json!({}));
    assert_eq!(
        presence.handle_message(None, DIFF, &step("1")),
        Ok(Handled::Buffered)
    );
    assert_eq!(
        presence.handle_message(None, DIFF, &step("2")),
        Ok(Handled::Buffered)
    );
    let before = presence.clone();
    assert_eq!(
        presence.handle_message(None, DIFF, &step("3")),
        Err(PresenceError::TooManyPendingDiffs { limit: 2 })
    );
    assert_eq!(presence, before);
    assert_eq!(
        presence.handle_message(Some("1"), STATE, &json!({})),
        Ok(Handled::Applied)
    );
    assert_eq!(keys(&presence), ["1", "2"]);
}

#[test]
fn entries_keep_the_fields_of_the_latest_join() {
    let mut presence = synced(
        "1",
        json!({"u": {"metas": [{"phx_ref": "1"}], "user": {"name": "A"}}}),
    );
    let step = diff(
        json!({"u": {"metas": [{"phx_ref": "2"}], "user": {"name": "B"}}}),
        json!({}),
    );
    assert_eq!(
        presence.handle_message(None, DIFF, &step),
        Ok(Handled::Applied)
    );
    let entry = presence.get("u").expect("listed");
    assert_eq!(entry.get("user"), Some(&json!({"name": "B"})));
    assert_eq!(
        entry.to_value(),
        json!({"metas": [{"phx_ref": "1"}, {"phx_ref": "2"}], "user": {"name": "B"}})
    );
    assert_eq!(serde_json::to_value(entry).ok(), Some(entry.to_value()));
}

#[test]
fn many_connections_per_key_are_matched_by_ref() {
    // Past the scan limit the ref sets are hashed; the result is the same.
    let refs: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let all: Vec<&str> = refs.iter().map(String::as_str).collect();
    let mut presence = synced("1", json!({ "u": metas(&all) }));
    let leaving: Vec<&str> = all.iter().copied().filter(|r| r.len() == 1).collect();
    let step = diff(
        json!({"u": metas(&all[30..])}),
        json!({ "u": metas(&leaving) }),
    );
    assert_eq!(
        presence.handle_message(None, DIFF, &step),
        Ok(Handled::Applied)
    );
    let left: Vec<&str> = presence
        .get("u")
        .expect("listed")
        .metas()
        .iter()
        .map(PresenceMeta::phx_ref)
        .collect();
    let expected: Vec<&str> = all[10..].to_vec();
    assert_eq!(left, expected);
}

#[test]
fn a_snapshot_lists_the_keys_in_order_and_says_whether_synced() {
    let empty = Presence::new(PresenceConfig::default()).snapshot();
    assert!(empty.is_empty() && !empty.is_synced());
    assert_eq!(empty.len(), 0);

    let presence = synced(
        "1",
        json!({ "b": { "metas": [{ "phx_ref": "2" }] }, "a": { "metas": [{ "phx_ref": "1" }] } }),
    );
    let snapshot = presence.snapshot();
    assert!(!snapshot.is_empty() && snapshot.is_synced());
    assert_eq!(snapshot.len(), 2);
    assert_eq!(
        snapshot.keys().collect::<Vec<_>>(),
        keys(&presence),
        "phoenix.js order"
    );
    assert!(snapshot.get("a").is_some() && snapshot.get("c").is_none());
}
