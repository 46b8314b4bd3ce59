//! Property tests of `session::presence` on bad and repeated input: any payload, however
//! malformed, is handled or refused without a panic, and a refused one changes nothing;
//! a state equal to the current list changes nothing either.

use channel_registry::session::presence::{Handled, Presence, PresenceConfig, PresenceEvent};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9_]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9_]{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value that is usually right but sometimes anything at all.
fn mostly(valid: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![12 => valid, 1 => json_value()]
}

fn meta() -> impl Strategy<Value = Value> {
    mostly(
        (
            mostly(prop::sample::select(&["r1", "r2", "r3"][..]).prop_map(Value::from)),
            json_value(),
        )
            .prop_map(|(phx_ref, extra)| json!({ "phx_ref": phx_ref, "extra": extra })),
    )
}

fn entry() -> impl Strategy<Value = Value> {
    mostly(
        mostly(prop::collection::vec(meta(), 0..3).prop_map(Value::Array))
            .prop_map(|metas| json!({ "metas": metas })),
    )
}

fn presences() -> impl Strategy<Value = Value> {
    mostly(
        prop::collection::btree_map(prop::sample::select(&["a", "b", "7"][..]), entry(), 0..4)
            .prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
    )
}

fn diff() -> impl Strategy<Value = Value> {
    mostly(
        (presences(), presences())
            .prop_map(|(joins, leaves)| json!({ "joins": joins, "leaves": leaves })),
    )
}

/// A message: (is a state, stamped with the join, payload).
fn message() -> impl Strategy<Value = (bool, bool, Value)> {
    prop_oneof![
        (Just(true), prop::bool::weighted(0.9), presences()),
        (Just(false), prop::bool::weighted(0.1), diff()),
    ]
}

fn drain(presence: &mut Presence) -> Vec<PresenceEvent> {
    std::iter::from_fn(|| presence.poll_event()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/presence_props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn bad_payloads_are_refused_without_change(
        messages in prop::collection::vec((prop::bool::weighted(0.1), message()), 1..20),
    ) {
        let mut presence = Presence::new(PresenceConfig::default());
        presence.handle_join("1");
        for (rejoin, (is_state, stamped, payload)) in messages {
            if rejoin {
                presence.handle_join("2");
            }
            let before = presence.clone();
            let event = if is_state { "presence_state" } else { "presence_diff" };
            let join_ref = stamped.then_some(if rejoin { "2" } else { "1" });
            if presence.handle_message(join_ref, event, &payload).is_err() {
                prop_assert_eq!(&presence, &before);
            }
            let _ = drain(&mut presence);
        }
    }

    #[test]
    fn the_current_list_as_a_state_changes_nothing(
        messages in prop::collection::vec(message(), 1..20),
    ) {
        let mut presence = Presence::new(PresenceConfig::default());
        presence.handle_join("1");
        // Synced first, so that no diff waits for the state below.
        prop_assert_eq!(
            presence.handle_message(Some("1"), "presence_state", &json!({})),
            Ok(Handled::Applied)
        );
        for (is_state, stamped, payload) in messages {
            let event = if is_state { "presence_state" } else { "presence_diff" };
            let _ = presence.handle_message(stamped.then_some("1"), event, &payload);
        }
        let _ = drain(&mut presence);
        let current: Map<String, Value> =
            presence.iter().map(|(key, entry)| (key.to_owned(), entry.to_value())).collect();
        let before = presence.list();
        prop_assert_eq!(
            presence.handle_message(Some("1"), "presence_state", &Value::Object(current)),
            Ok(Handled::Applied)
        );
        prop_assert_eq!(drain(&mut presence), vec![PresenceEvent::Sync]);
        prop_assert_eq!(presence.list(), before);
        prop_assert!(presence.is_synced());
    }
}
