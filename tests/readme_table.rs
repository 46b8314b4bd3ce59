//! The README's phase table says what `engine::TRANSITIONS` says: the same
//! rows, no more, no fewer. The README groups the triggers that lead from one
//! phase to the same phase into one row (`a · b · c`) and explains some of
//! them in parentheses; both are read here.

use std::collections::BTreeSet;

use channel_registry::engine::{next, Phase, Trigger, TRANSITIONS};

/// How the README names each trigger (after parentheses are dropped).
const WORDS: &[(&str, Trigger)] = &[
    ("join ok, settling configured", Trigger::JoinOkSettling),
    ("join ok", Trigger::JoinOk),
    ("join error", Trigger::JoinError),
    ("join timeout", Trigger::JoinTimeout),
    ("settled", Trigger::Settled),
    ("settle failed", Trigger::SettleFailed),
    ("settle timeout", Trigger::SettleTimeout),
    ("last holder left", Trigger::LastHolderLeft),
    ("superseded", Trigger::Superseded),
    ("a holder arrives within the grace period", Trigger::Revive),
    ("grace elapsed", Trigger::GraceElapsed),
    ("evicted", Trigger::Evicted),
    ("socket down", Trigger::SocketDown),
    ("server close", Trigger::ServerClose),
    ("server crash", Trigger::ServerError),
    ("close-all", Trigger::CloseAll),
    ("resync", Trigger::Resync),
];

/// The README's words for a trigger.
fn trigger(words: &str) -> Trigger {
    WORDS
        .iter()
        .find(|(w, _)| *w == words)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| {
            panic!("README names a trigger {words:?} this test does not know: add it to WORDS")
        })
}

fn phase(name: &str) -> Phase {
    Phase::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("README names a phase {name:?} the engine does not have"))
}

/// `text` without anything in parentheses, without emphasis, trimmed.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("**", "").trim().to_owned()
}

/// The rows of the first table after the "The phase table" heading, as
/// cells.
fn readme_rows() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md next to Cargo.toml");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("The phase table"))
        .expect("a \"## The phase table\" section in README.md");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn readme_phase_table_is_engine_transitions() {
    let rows = readme_rows();
    assert!(!rows.is_empty(), "the phase table has no rows");
    let mut documented = BTreeSet::new();
    let mut terminal = false;
    for row in &rows {
        let [from, triggers, to] = row.as_slice() else {
            panic!("a phase-table row needs three cells: {row:?}");
        };
        let from = phase(from);
        if from == Phase::Destroyed {
            assert!(
                to.is_empty() && triggers.contains("terminal"),
                "destroyed must be documented as terminal: {row:?}"
            );
            terminal = true;
            continue;
        }
        let to = phase(to);
        for words in triggers.split('·') {
            let t = trigger(&plain(words));
            assert!(
                documented.insert((from, t, to)),
                "README lists {from} --{t:?}--> {to} twice"
            );
            assert_eq!(
                next(from, t),
                Some(to),
                "README row {from} --{t:?}--> {to} is not a row of engine::TRANSITIONS"
            );
        }
    }
    assert!(terminal, "the table must say that destroyed is terminal");
    let table: BTreeSet<_> = TRANSITIONS.iter().copied().collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "rows of engine::TRANSITIONS missing from the README: {missing:?}"
    );
    assert_eq!(documented, table);
}

#[test]
fn every_trigger_has_words() {
    for t in Trigger::ALL {
        assert!(
            WORDS.iter().any(|(_, w)| *w == t),
            "{t:?} has no README wording here"
        );
    }
}

#[test]
fn parentheses_and_emphasis_are_dropped() {
    assert_eq!(plain(" join timeout (sends `phx_leave`) "), "join timeout");
    assert_eq!(
        plain("a holder arrives within the grace period (**revive**, no rejoin)"),
        "a holder arrives within the grace period"
    );
}
