//! Positions read from an ordered topic's payloads, with the reason when
//! they can't be.

use serde_json::Value;

use crate::codec::Payload;
use crate::session::ordered::StreamOptions;
use crate::session::stream::{Position, PositionError};

/// The event's position, as the topic's wire names say where it is.
pub(crate) fn extract(
    options: &StreamOptions,
    payload: &Payload,
) -> Result<Position, PositionError> {
    let wire = &options.wire;
    let json = payload.as_json();
    let field = |name: &str| integer(json.and_then(|v| v.get(name)));
    if options.is_versioned() {
        Ok(Position::Version {
            base: field(&wire.base_field)?,
            version: field(&wire.version_field)?,
        })
    } else {
        Ok(Position::Seq(field(&wire.seq_field)?))
    }
}

fn integer(value: Option<&Value>) -> Result<u64, PositionError> {
    match value {
        None | Some(Value::Null) => Err(PositionError::Missing),
        Some(v) => v.as_u64().ok_or(if v.as_i64().is_some() {
            PositionError::Negative
        } else {
            PositionError::NotAnInteger
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seq(payload: Value) -> Result<Position, PositionError> {
        extract(&StreamOptions::default(), &Payload::Json(payload))
    }

    #[test]
    fn sequence_numbers_are_read_or_named_wrong() {
        assert_eq!(seq(json!({"seq": 7, "body": "x"})), Ok(Position::Seq(7)));
        assert_eq!(seq(json!({"body": "x"})), Err(PositionError::Missing));
        assert_eq!(seq(json!({"seq": null})), Err(PositionError::Missing));
        assert_eq!(seq(json!({"seq": "7"})), Err(PositionError::NotAnInteger));
        assert_eq!(seq(json!({"seq": 7.5})), Err(PositionError::NotAnInteger));
        assert_eq!(seq(json!({"seq": -3})), Err(PositionError::Negative));
        assert_eq!(
            extract(&StreamOptions::default(), &Payload::Binary(vec![1])),
            Err(PositionError::Missing)
        );
    }

    #[test]
    fn envelopes_need_both_versions() {
        let options = StreamOptions::versioned();
        let read = |v: Value| extract(&options, &Payload::Json(v));
        assert_eq!(
            read(json!({"base_version": 0, "version": 1, "ops": []})),
            Ok(Position::Version {
                base: 0,
                version: 1
            })
        );
        assert_eq!(read(json!({"version": 1})), Err(PositionError::Missing));
        assert_eq!(
            read(json!({"base_version": 0, "version": "1"})),
            Err(PositionError::NotAnInteger)
        );
    }

    #[test]
    fn wire_names_are_honoured() {
        let mut options = StreamOptions::default();
        options.wire.seq_field = "n".into();
        assert_eq!(
            extract(&options, &Payload::Json(json!({"n": 3, "seq": 9}))),
            Ok(Position::Seq(3))
        );
    }
}
