//! Runs `benches/phoenix-js/session.mjs` (installing the pinned `phoenix`
//! npm package on first use) and reads its measurements.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::timing::Rounds;
use super::Scenario;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/phoenix-js")
}

/// The client's version, as installed.
pub fn version() -> Option<String> {
    let text = std::fs::read_to_string(dir().join("node_modules/phoenix/package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(json.get("version")?.as_str()?.to_owned())
}

fn install() -> Result<(), String> {
    let dir = dir();
    if dir.join("node_modules/phoenix").exists() {
        return Ok(());
    }
    eprintln!("installing the phoenix npm package (npm ci) ...");
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .status()
        .map_err(|e| format!("cannot run npm ({e}): install Node.js 20+ and npm"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("npm ci failed in {}", dir.display()))
    }
}

/// The script's measurements of `scenarios` at `live` channels.
pub fn run(
    live: usize,
    scenarios: &[Scenario],
    rounds: usize,
    round_ms: u64,
) -> Result<Vec<(Scenario, Rounds)>, String> {
    install()?;
    let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    let out = Command::new("node")
        .arg(dir().join("session.mjs"))
        .arg(format!("--live={live}"))
        .arg(format!("--scenarios={}", names.join(",")))
        .arg(format!("--rounds={rounds}"))
        .arg(format!("--round-ms={round_ms}"))
        .output()
        .map_err(|e| format!("cannot run node ({e}): install Node.js 20+"))?;
    if !out.status.success() {
        return Err(format!(
            "session.mjs failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(Scenario, Rounds)> = text.lines().filter_map(|line| parse(line, live)).collect();
    if rows.len() != scenarios.len() {
        return Err(format!(
            "session.mjs printed {} of {} measurements:\n{text}",
            rows.len(),
            scenarios.len()
        ));
    }
    Ok(rows)
}

/// One line of the script's output, if it is a measurement at `live`.
fn parse(line: &str, live: usize) -> Option<(Scenario, Rounds)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let numbers = |key: &str| -> Option<Vec<f64>> {
        v.get(key)?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_f64)
            .collect()
    };
    if v.get("live")?.as_u64()? != u64::try_from(live).ok()? {
        return None;
    }
    let scenario = Scenario::from_name(v.get("scenario")?.as_str()?)?;
    let rounds = Rounds {
        ns: numbers("rounds")?,
        cpu: numbers("cpu_rounds")?,
    };
    Some((scenario, rounds))
}
