//! The CI configuration, checked exhaustively and depth-first on the real
//! engine: every invariant holds, every behaviour the model must reach is
//! reached, and the state count is pinned (a change in it means the engine or
//! the model changed what it can do; update it deliberately).

use channel_registry::engine::Engine;
use channel_registry_model::report::{self, Verdict};
use channel_registry_model::ModelCfg;

/// Unique states of the CI configuration.
const UNIQUE: usize = 7_367_392;
/// States generated (with repeats) for it.
const GENERATED: usize = 33_066_122;

#[test]
fn ci_configuration_holds_exhaustively() {
    let cfg = ModelCfg::ci();
    assert!(cfg.subscribers >= 2 && cfg.rooms >= 1 && cfg.versions >= 3);
    assert!(cfg.settling && cfg.socket_drops >= 1 && cfg.ops >= 4);
    let outcome = report::check(cfg.into_model::<Engine>(), 2, false);
    eprintln!("{}", outcome.table());
    for (name, verdict) in &outcome.properties {
        assert!(
            matches!(verdict, Verdict::Held | Verdict::Found(_)),
            "{name}: {verdict:?}"
        );
    }
    assert!(outcome.complete);
    assert_eq!(outcome.unique, UNIQUE, "unique states");
    assert_eq!(outcome.generated, GENERATED, "generated states");
}
