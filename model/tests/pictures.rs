//! The pictures: each counterexample of the reference design, drawn as a
//! sequence diagram, is well-formed XML, names every step of its trace, and
//! is the picture committed in `docs/counterexamples/`; so is a path of the
//! real engine with a socket drop and timers due together, as the Explorer
//! would draw it.

use std::path::Path;

use channel_registry::engine::Engine;
use channel_registry_model::bugs::{shortest, Bug};
use channel_registry_model::properties::Milestone;
use channel_registry_model::svg::{escape, path_svg};
use channel_registry_model::{trace, Action, ChannelModel, ModelCfg, Reference, Registry};
use stateright::Model;

/// A small well-formedness check of XML, enough for what the pictures use:
/// elements nest and close, attributes are quoted, and text and attribute
/// values use only the five predefined entities or character references.
fn well_formed(xml: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = xml;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            check_text(rest)?;
            if !rest.trim().is_empty() {
                return Err(format!("text after the root element: {rest:?}"));
            }
            break;
        };
        let (text, tail) = rest.split_at(lt);
        check_text(text)?;
        if open.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root element: {text:?}"));
        }
        if let Some(comment) = tail.strip_prefix("<!--") {
            let end = comment.find("-->").ok_or("unclosed comment")?;
            rest = &comment[end + 3..];
            continue;
        }
        let end = tail.find('>').ok_or("unclosed tag")?;
        let tag = &tail[1..end];
        rest = &tail[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(top) if top == name.trim() => continue,
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        }
        let empty = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name_end = body.find(|c: char| c.is_whitespace()).unwrap_or(body.len());
        let name = &body[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
        {
            return Err(format!("bad element name in <{tag}>"));
        }
        check_attributes(&body[name_end..])?;
        if open.is_empty() {
            roots += 1;
        }
        if !empty {
            open.push(name);
        }
    }
    match (open.last(), roots) {
        (Some(name), _) => Err(format!("<{name}> never closed")),
        (None, 1) => Ok(()),
        (None, n) => Err(format!("{n} root elements")),
    }
}

fn check_text(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let tail = &rest[amp + 1..];
        let semi = tail.find(';').ok_or("& without ;")?;
        let entity = &tail[..semi];
        let known = ["amp", "lt", "gt", "quot", "apos"].contains(&entity)
            || entity
                .strip_prefix('#')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if !known {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &tail[semi + 1..];
    }
    Ok(())
}

fn check_attributes(mut attrs: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return Ok(());
        }
        let eq = attrs
            .find('=')
            .ok_or(format!("attribute without value: {attrs:?}"))?;
        let name = attrs[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) || seen.contains(&name) {
            return Err(format!("bad or repeated attribute name {name:?}"));
        }
        seen.push(name);
        let after = attrs[eq + 1..].trim_start();
        let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'');
        let quote = quote.ok_or(format!("unquoted value of {name}"))?;
        let close = after[1..]
            .find(quote)
            .ok_or(format!("unclosed value of {name}"))?;
        let value = &after[1..1 + close];
        if value.contains('<') {
            return Err(format!("< in the value of {name}"));
        }
        check_text(value)?;
        attrs = &after[close + 2..];
    }
}

#[test]
fn the_checker_rejects_what_it_should() {
    assert!(well_formed(r#"<a x="1"><b/>t &amp; u</a>"#).is_ok());
    for bad in [
        "<a><b></a></b>",
        "<a>",
        "<a x=1/>",
        r#"<a x="1" x="2"/>"#,
        "<a>&nbsp;</a>",
        "<a>x & y</a>",
        "<a/><b/>",
        r#"<a x="<"/>"#,
    ] {
        assert!(well_formed(bad).is_err(), "{bad}");
    }
}

/// Draws `actions` and checks the picture: well-formed, every step named.
fn draw<E: Registry>(model: &ChannelModel<E>, actions: &[Action], title: &str) -> String {
    let svg = path_svg(model, actions, title);
    if let Err(e) = well_formed(&svg) {
        panic!("{title}: not well-formed XML: {e}\n{svg}");
    }
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    for (i, step) in trace::walk(model, actions).iter().enumerate() {
        let caption = escape(&format!("{}. {}", i + 1, step.text));
        assert!(svg.contains(&caption), "{title}: step {caption} missing");
    }
    svg
}

#[test]
fn every_counterexample_is_drawn_and_committed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/counterexamples");
    for bug in Bug::ALL {
        let actions = bug.hunt::<Reference>().expect("a counterexample");
        let model = bug.cfg().into_model::<Reference>();
        let title = format!("{}: the reference design, shortest trace", bug.title());
        let svg = draw(&model, &actions, &title);
        assert!(svg.contains(&escape(bug.invariant().name())), "{title}");
        let file = dir.join(format!("{}.svg", bug.slug()));
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == svg,
            "{} is not the current picture: run `cargo run --release -p \
             channel-registry-model -- counterexamples` and commit it",
            file.display()
        );
    }
}

#[test]
fn the_explorer_draws_drops_faults_and_batched_timers() {
    let cfg = ModelCfg {
        versions: 2,
        ops: 3,
        faults: 1,
        socket_drops: 1,
        settling: true,
        batched_timers: true,
        ..ModelCfg::minimal()
    };
    let model = cfg.into_model::<Engine>();
    let mut actions = shortest(model.clone(), Milestone::TimersBatched.name()).expect("a batch");
    // Then a socket drop and a reconnect, if the path allows them.
    for extra in [Action::SocketDrop, Action::Reconnect] {
        let last = trace::replay(&model, &actions);
        let mut possible = Vec::new();
        model.actions(&last, &mut possible);
        if possible.contains(&extra) {
            actions.push(extra);
        }
    }
    let svg = draw(&model, &actions, "engine path");
    assert!(svg.contains("timers all due"), "{svg}");
    assert!(svg.contains("socket drops"), "{svg}");
    // What the Explorer shows is the same picture.
    let path = stateright::Path::from_actions(&model, model.init_states().remove(0), &actions)
        .expect("a path of the model");
    let shown = model.as_svg(path).expect("a picture");
    assert!(well_formed(&shown).is_ok());
}
