//! The part of JSON Patch (RFC 6902) a versioned topic applies to its state: `add`,
//! `replace` and `remove`, with JSON Pointer paths (RFC 6901).

use serde_json::Value;

/// Why one operation of a patch could not be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpError {
    /// Position of the operation in the patch.
    pub(crate) index: usize,
    /// What is wrong with it.
    pub(crate) reason: String,
}

/// Apply every operation of `ops` to `doc`, in order. On error `doc` may be half patched:
/// apply to a copy to keep the original.
pub(crate) fn apply(doc: &mut Value, ops: &[Value]) -> Result<(), OpError> {
    for (index, op) in ops.iter().enumerate() {
        apply_one(doc, op).map_err(|reason| OpError { index, reason })?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, op: &Value) -> Result<(), String> {
    let name = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or("an operation is an object with a string \"op\"")?;
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .ok_or("an operation needs a string \"path\"")?;
    let tokens = pointer_tokens(path)?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| format!("\"{name}\" needs a \"value\""))
    };
    match name {
        "add" => add(doc, &tokens, value()?, path),
        "replace" => {
            let target = lookup(doc, &tokens).ok_or_else(|| missing(path))?;
            *target = value()?;
            Ok(())
        }
        "remove" => remove(doc, &tokens, path),
        other => Err(format!(
            "unsupported op \"{other}\": use \"add\", \"replace\" or \"remove\""
        )),
    }
}

/// The reference tokens of a JSON Pointer; `""` is the whole document.
fn pointer_tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("path \"{path}\" must be empty or start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn missing(path: &str) -> String {
    format!("path \"{path}\" does not exist")
}

fn lookup<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

fn add(doc: &mut Value, tokens: &[String], value: Value, path: &str) -> Result<(), String> {
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match lookup(doc, parents).ok_or_else(|| missing(path))? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| format!("path \"{path}\": no such array position"))?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!(
            "path \"{path}\": its parent is neither object nor array"
        )),
    }
}

fn remove(doc: &mut Value, tokens: &[String], path: &str) -> Result<(), String> {
    let Some((last, parents)) = tokens.split_last() else {
        return Err("the whole document cannot be removed: replace it instead".to_owned());
    };
    let removed = match lookup(doc, parents) {
        Some(Value::Object(map)) => map.remove(last).is_some(),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    };
    if removed {
        Ok(())
    } else {
        Err(missing(path))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(mut doc: Value, ops: Value) -> Result<Value, OpError> {
        let ops = ops.as_array().cloned().unwrap_or_default();
        apply(&mut doc, &ops).map(|()| doc)
    }

    #[test]
    fn add_replace_and_remove_follow_rfc_6902() {
        let doc = json!({"a": {"b": [1, 3]}, "x~y/z": 0});
        let ops = json!([
            {"op": "add", "path": "/a/b/1", "value": 2},
            {"op": "add", "path": "/a/b/-", "value": 4},
            {"op": "add", "path": "/a/c", "value": "new"},
            {"op": "replace", "path": "/x~0y~1z", "value": 9},
            {"op": "remove", "path": "/a/b/0"},
        ]);
        assert_eq!(
            patched(doc, ops),
            Ok(json!({"a": {"b": [2, 3, 4], "c": "new"}, "x~y/z": 9}))
        );
    }

    #[test]
    fn the_empty_path_is_the_whole_document() {
        let ops = json!([{"op": "replace", "path": "", "value": {"fresh": true}}]);
        assert_eq!(patched(json!({"old": 1}), ops), Ok(json!({"fresh": true})));
        let removal = json!([{"op": "remove", "path": ""}]);
        assert!(patched(json!({}), removal).is_err());
    }

    #[test]
    fn a_bad_operation_names_its_index() {
        let ops = json!([
            {"op": "add", "path": "/ok", "value": 1},
            {"op": "replace", "path": "/missing", "value": 2},
        ]);
        let error = patched(json!({}), ops).expect_err("replace needs an existing target");
        assert_eq!(error.index, 1);
        assert!(error.reason.contains("/missing"), "{}", error.reason);
        for bad in [
            json!([{"op": "move", "path": "/a", "from": "/b"}]),
            json!([{"path": "/a", "value": 1}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "add", "path": "/a/b", "value": 1}]),
        ] {
            assert!(patched(json!({}), bad.clone()).is_err(), "{bad}");
        }
    }
}
