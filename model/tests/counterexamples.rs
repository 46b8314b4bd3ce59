//! The model has teeth: on the faithful port of the reference design it finds
//! a counterexample for each of the four bugs DESIGN §4 names, shortest first,
//! and on the real engine, under the same configurations, none at all.

use channel_registry::engine::Engine;
use channel_registry_model::bugs::Bug;
use channel_registry_model::report::{self, Verdict};
use channel_registry_model::{trace, Action, Reference};

fn hunt(bug: Bug) -> Vec<Action> {
    let actions = bug
        .hunt::<Reference>()
        .unwrap_or_else(|| panic!("no counterexample for {}", bug.title()));
    let model = bug.cfg().into_model::<Reference>();
    eprintln!("{}", bug.title());
    for line in trace::path_lines(&model, &actions) {
        eprintln!("  {line}");
    }
    actions
}

fn position(actions: &[Action], what: impl Fn(&Action) -> bool) -> usize {
    actions
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("missing step in {actions:?}"))
}

#[test]
fn a_leave_while_connecting_leaks() {
    let a = hunt(Bug::LeaveWhileConnecting);
    // The only subscriber leaves before the join ok arrives.
    let leave = position(&a, |a| matches!(a, Action::Unsubscribe { .. }));
    let reply = position(&a, |a| *a == Action::Deliver);
    assert!(leave < reply, "{a:?}");
    assert_eq!(a.len(), 3);
}

#[test]
fn b_revive_within_grace_is_refused() {
    let a = hunt(Bug::ReviveWithinGrace);
    // Unsubscribe, then subscribe again with no grace timer fired between.
    let leave = position(&a, |a| matches!(a, Action::Unsubscribe { .. }));
    assert!(matches!(a.last(), Some(Action::Subscribe { .. })), "{a:?}");
    assert!(
        !a[leave..].iter().any(|a| matches!(a, Action::Fire { .. })),
        "{a:?}"
    );
    assert_eq!(a.len(), 4);
}

#[test]
fn c_switch_while_connecting_leaks_the_old_version() {
    let a = hunt(Bug::SwitchWhileConnecting);
    // Two switches before any join ok is delivered.
    let second = a
        .iter()
        .filter(|a| matches!(a, Action::Switch { .. }))
        .count();
    assert_eq!(second, 2, "{a:?}");
    let first_reply = position(&a, |a| *a == Action::Deliver);
    assert!(
        a[..first_reply]
            .iter()
            .filter(|a| matches!(a, Action::Switch { .. }))
            .count()
            == 2
    );
    assert_eq!(a.len(), 4);
}

#[test]
fn d_settle_timeout_strands_subscribers() {
    let a = hunt(Bug::SettleTimeout);
    assert!(
        a.iter().any(|a| matches!(
            a,
            Action::Fire {
                kind: channel_registry_model::registry::TimerKind::Settle,
                ..
            }
        )),
        "{a:?}"
    );
    assert_eq!(a.len(), 6);
}

#[test]
fn the_real_engine_has_none_of_them() {
    for bug in Bug::ALL {
        let outcome = report::check(bug.cfg().into_model::<Engine>(), 1, false);
        assert!(outcome.complete);
        for (name, verdict) in &outcome.properties {
            assert!(
                !matches!(verdict, Verdict::Violated(_)),
                "{}: {name} violated",
                bug.title()
            );
        }
    }
}
