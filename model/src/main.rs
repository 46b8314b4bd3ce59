//! Command line of the model.
//!
//! ```text
//! channel-registry-model check [--cfg ci|ci-four-ops|full|large] [--set field=value]... [--threads N] [--reference]
//! channel-registry-model check streams [--cfg ci|sequenced|versioned] [--set field=value]... [--threads N]
//! channel-registry-model explore [ADDR] [--cfg ci|ci-four-ops|full|large] [--reference]
//! channel-registry-model explore streams [ADDR] [--cfg sequenced|versioned]
//! channel-registry-model counterexamples [--svg-dir DIR]
//! channel-registry-model replay FILE
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use channel_registry::engine::Engine;
use channel_registry_model::bugs::Bug;
use channel_registry_model::properties::Inv;
use channel_registry_model::report::{self, Verdict};
use channel_registry_model::streams::{self, StreamsCfg};
use channel_registry_model::{svg, trace};
use channel_registry_model::{ChannelModel, ModelCfg, Reference, Registry};
use stateright::Model;

const USAGE: &str = "usage:
  channel-registry-model check [--cfg ci|ci-four-ops|full|large] [--set field=value]... [--threads N] [--reference]
      check every property exhaustively (depth-first), with progress;
      --set overrides one field of the configuration (e.g. ops=5, settling=off)
  channel-registry-model check streams [--cfg ci|sequenced|versioned] [--set field=value]... [--threads N]
      the ordered-streams model: the real OrderedStream against a server with a
      replay window (sequenced) and a room over two versioned topics; ci checks both
  channel-registry-model explore [ADDR] [--cfg ci|ci-four-ops|full|large] [--reference]
  channel-registry-model explore streams [ADDR] [--cfg sequenced|versioned]
      serve the stateright Explorer (default 127.0.0.1:3000)
  channel-registry-model counterexamples [--svg-dir DIR]
      the reference design's four bugs: shortest traces, and the real engine
      under the same configurations; each trace is also drawn as a sequence
      diagram in DIR (default: the model crate's docs/counterexamples)
  channel-registry-model replay FILE
      re-run a session recording (JSON lines, e.g. from the client's
      ClientConfig::with_recording) through a fresh session: the engine is
      audited after every input and every output compared with the recorded
      one; exits non-zero at the first difference";

struct Args {
    cmd: String,
    cfg: ModelCfg,
    cfg_name: String,
    threads: usize,
    reference: bool,
    addr: String,
    svg_dir: PathBuf,
    file: Option<PathBuf>,
    /// `Some` for the ordered-streams model: the configurations to run.
    streams: Option<Vec<StreamsCfg>>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or("missing command")?;
    let mut args = Args {
        cmd,
        cfg: ModelCfg::ci(),
        cfg_name: "ci".to_owned(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        reference: false,
        addr: "127.0.0.1:3000".to_owned(),
        svg_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/counterexamples")),
        file: None,
        streams: None,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "streams"
                if args.streams.is_none() && matches!(args.cmd.as_str(), "check" | "explore") =>
            {
                args.streams = Some(StreamsCfg::ci().to_vec());
            }
            "--cfg" if args.streams.is_some() => {
                let name = it.next().ok_or("--cfg needs ci, sequenced or versioned")?;
                args.streams = Some(match name.as_str() {
                    "ci" => StreamsCfg::ci().to_vec(),
                    "sequenced" => vec![StreamsCfg::sequenced()],
                    "versioned" => vec![StreamsCfg::versioned()],
                    other => {
                        return Err(format!(
                            "unknown stream configuration {other:?} (ci, sequenced or versioned)"
                        ))
                    }
                });
                args.cfg_name = name;
            }
            "--set" if args.streams.is_some() => {
                let kv = it.next().ok_or("--set needs field=value")?;
                let (k, v) = kv.split_once('=').ok_or("--set needs field=value")?;
                for cfg in args.streams.iter_mut().flatten() {
                    cfg.set(k, v)?;
                }
                args.cfg_name = format!("{}+", args.cfg_name.trim_end_matches('+'));
            }
            "--cfg" => {
                let name = it
                    .next()
                    .ok_or("--cfg needs ci, ci-four-ops, full or large")?;
                args.cfg = match name.as_str() {
                    "ci" => ModelCfg::ci(),
                    "ci-four-ops" => ModelCfg::ci_four_ops(),
                    "full" => ModelCfg::full(),
                    "large" => ModelCfg::large(),
                    other => {
                        return Err(format!(
                            "unknown configuration {other:?} (ci, ci-four-ops, full or large)"
                        ))
                    }
                };
                args.cfg_name = name;
            }
            "--threads" => {
                let n = it.next().ok_or("--threads needs a number")?;
                args.threads = n.parse().map_err(|_| format!("bad thread count {n:?}"))?;
            }
            "--set" => {
                let kv = it.next().ok_or("--set needs field=value")?;
                let (k, v) = kv.split_once('=').ok_or("--set needs field=value")?;
                args.cfg.set(k, v)?;
                args.cfg_name = format!("{}+", args.cfg_name.trim_end_matches('+'));
            }
            "--reference" => args.reference = true,
            "--svg-dir" => args.svg_dir = it.next().ok_or("--svg-dir needs a folder")?.into(),
            "-h" | "--help" => return Err(String::new()),
            other if args.cmd == "explore" && !other.starts_with('-') => {
                args.addr = other.to_owned()
            }
            other if args.cmd == "replay" && args.file.is_none() && !other.starts_with('-') => {
                args.file = Some(other.into())
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(cfgs) = &args.streams {
        return match args.cmd.as_str() {
            "check" => check_streams(&args, cfgs),
            _ => explore_streams(&args, cfgs),
        };
    }
    match (args.cmd.as_str(), args.reference) {
        ("check", false) => check::<Engine>(&args),
        ("check", true) => check::<Reference>(&args),
        ("explore", false) => explore::<Engine>(&args),
        ("explore", true) => explore::<Reference>(&args),
        ("counterexamples", _) => counterexamples(&args),
        ("replay", _) => replay(&args),
        ("help" | "--help" | "-h", _) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        (other, _) => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn check<E: Registry>(args: &Args) -> ExitCode {
    println!(
        "checking the {} with --cfg {} ({:?}), depth-first on {} threads",
        E::NAME,
        args.cfg_name,
        args.cfg,
        args.threads
    );
    let model: ChannelModel<E> = args.cfg.clone().into_model();
    let outcome = report::check(model.clone(), args.threads, true);
    print!("{}", outcome.table());
    for (name, verdict) in &outcome.properties {
        if let Verdict::Violated(actions) = verdict {
            println!("\ncounterexample for {name}:");
            for line in trace::path_lines(&model, actions) {
                println!("{line}");
            }
            let last = trace::replay(&model, actions);
            if let Some(note) = Inv::ALL
                .into_iter()
                .find(|inv| inv.name() == *name)
                .and_then(|inv| model.note(&last, inv))
            {
                println!("  => {note}");
            }
        }
    }
    if outcome.all_good() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn check_streams(args: &Args, cfgs: &[StreamsCfg]) -> ExitCode {
    let mut ok = true;
    for cfg in cfgs {
        println!(
            "checking ordered streams ({:?}), depth-first on {} threads",
            cfg, args.threads
        );
        let model = cfg.clone().into_model();
        let outcome = streams::run::check(model.clone(), args.threads);
        print!("{}", outcome.table());
        for (name, verdict) in &outcome.properties {
            if let streams::run::Verdict::Violated(actions) = verdict {
                println!("\ncounterexample for {name}:");
                for line in streams::run::trace(&model, actions) {
                    println!("{line}");
                }
            }
        }
        ok &= outcome.all_good();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn explore_streams(args: &Args, cfgs: &[StreamsCfg]) -> ExitCode {
    let Some(cfg) = cfgs.first() else {
        return ExitCode::FAILURE;
    };
    println!(
        "serving the Explorer for ordered streams ({:?}) on http://{}",
        cfg.mode, args.addr
    );
    let _checker = cfg.clone().into_model().checker().serve(args.addr.as_str());
    ExitCode::SUCCESS
}

fn explore<E: Registry>(args: &Args) -> ExitCode {
    println!(
        "serving the Explorer for the {} (--cfg {}) on http://{}",
        E::NAME,
        args.cfg_name,
        args.addr
    );
    let model: ChannelModel<E> = args.cfg.clone().into_model();
    let _checker = model.checker().serve(args.addr.as_str());
    ExitCode::SUCCESS
}

fn counterexamples(args: &Args) -> ExitCode {
    let mut ok = true;
    if let Err(e) = std::fs::create_dir_all(&args.svg_dir) {
        eprintln!("cannot create {}: {e}", args.svg_dir.display());
        return ExitCode::FAILURE;
    }
    for bug in Bug::ALL {
        let inv = bug.invariant();
        println!(
            "\n{}\n  configuration: {:?}\n  breaks: {}",
            bug.title(),
            bug.cfg(),
            inv.name()
        );
        let model: ChannelModel<Reference> = bug.cfg().into_model();
        match bug.hunt::<Reference>() {
            Some(actions) => {
                println!(
                    "  reference design, shortest counterexample ({} steps):",
                    actions.len()
                );
                for line in trace::path_lines(&model, &actions) {
                    println!("    {line}");
                }
                let last = trace::replay(&model, &actions);
                println!(
                    "    => {}",
                    model.note(&last, inv).unwrap_or("(no message)")
                );
                let file = args.svg_dir.join(format!("{}.svg", bug.slug()));
                let title = format!("{}: the reference design, shortest trace", bug.title());
                match std::fs::write(&file, svg::path_svg(&model, &actions, &title)) {
                    Ok(()) => {
                        let cwd = std::env::current_dir().unwrap_or_default();
                        let shown = file.strip_prefix(&cwd).unwrap_or(&file);
                        println!("  drawn in {}", shown.display());
                    }
                    Err(e) => {
                        ok = false;
                        eprintln!("cannot write {}: {e}", file.display());
                    }
                }
            }
            None => {
                ok = false;
                println!("  reference design: NO counterexample found");
            }
        }
        let outcome = report::check(bug.cfg().into_model::<Engine>(), 1, false);
        let violated: Vec<_> = outcome
            .properties
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Violated(_)))
            .map(|(n, _)| *n)
            .collect();
        if violated.is_empty() {
            println!(
                "  real engine, same configuration: every invariant holds ({} unique states)",
                outcome.unique
            );
        } else {
            ok = false;
            println!("  real engine, same configuration: VIOLATED {violated:?}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Replays a recording line by line, with a progress line on long ones.
fn replay(args: &Args) -> ExitCode {
    use std::io::BufRead;

    use channel_registry::session::record::Replayer;

    let Some(path) = &args.file else {
        eprintln!("replay needs the recording's FILE\n{USAGE}");
        return ExitCode::FAILURE;
    };
    let shown = path.display();
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("cannot open {shown}: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Any instant stands for the recorded session's start.
    #[allow(clippy::disallowed_methods)]
    let base = std::time::Instant::now();
    let mut replayer: Option<Replayer> = None;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = i + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("cannot read line {number} of {shown}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let step = match &mut replayer {
            Some(replayer) => replayer.line(number, &line),
            None => Replayer::new(&line, base).map(|r| replayer = Some(r)),
        };
        if let Err(error) = step {
            eprintln!("{shown}: {error}");
            return ExitCode::FAILURE;
        }
        if number % 100_000 == 0 {
            eprintln!("  {number} lines replayed");
        }
    }
    let Some(replayer) = replayer else {
        eprintln!("{shown} is empty: a recording starts with its header line");
        return ExitCode::FAILURE;
    };
    let s = replayer.summary();
    println!(
        "{shown}: {} lines, {} inputs over {:?}, {} outputs: all equal, engine audit clean",
        s.lines, s.inputs, s.span, s.outputs
    );
    ExitCode::SUCCESS
}
