//! Strict JSON for bodies a peer sends (I-JSON, RFC 7493): a repeated member name in any
//! object is an error, named with its JSON pointer, and nesting is limited while parsing, so
//! that a hostile document is refused before it is built.
//!
//! Why: parsers disagree on which of two `"id"` members wins. A body we validated with one
//! reading must not be read another way by whoever consumes the stored bytes later.

use std::{cell::RefCell, fmt};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// Not JSON at all.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// An object names the same member twice.
    #[error("duplicate member {key:?} at {pointer}")]
    DuplicateKey {
        /// The repeated name.
        key: String,
        /// The JSON pointer of the second occurrence.
        pointer: String,
    },
    /// Nested deeper than the limit.
    #[error("the JSON nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

/// What went wrong below the point where serde's error type hides it: the error unwinds
/// through every level, and each adds its segment of the pointer.
#[derive(Default)]
struct Side {
    duplicate: Option<(String, Vec<String>)>,
    too_deep: bool,
}

/// Parses `bytes` as JSON, refusing repeated member names and nesting deeper than
/// `max_depth` (a scalar is depth 1, `{"a": 1}` depth 2).
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, StrictJsonError> {
    let side = RefCell::new(Side::default());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        side: &side,
        depth: 1,
        max_depth,
    };
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    let side = side.into_inner();
    if let Some((key, mut path)) = side.duplicate {
        path.reverse();
        path.push(key.clone());
        let pointer = path.iter().fold(String::new(), |mut p, seg| {
            p.push('/');
            p.push_str(&seg.replace('~', "~0").replace('/', "~1"));
            p
        });
        return Err(StrictJsonError::DuplicateKey { key, pointer });
    }
    if side.too_deep {
        return Err(StrictJsonError::TooDeep { limit: max_depth });
    }
    result.map_err(|e| {
        let message = e.to_string();
        if message.starts_with("recursion limit exceeded") {
            return StrictJsonError::TooDeep { limit: max_depth };
        }
        let cause = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(c, _)| c)
            .to_owned();
        StrictJsonError::Syntax {
            message: cause,
            line: e.line(),
            column: e.column(),
        }
    })
}

#[derive(Clone, Copy)]
struct Strict<'a> {
    side: &'a RefCell<Side>,
    depth: usize,
    max_depth: usize,
}

impl Strict<'_> {
    fn child<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            self.side.borrow_mut().too_deep = true;
            return Err(E::custom("too deep"));
        }
        Ok(Strict {
            depth: self.depth + 1,
            ..self
        })
    }

    /// Adds `segment` to the pointer of an error found below this level.
    fn locate(self, segment: impl FnOnce() -> String) {
        if let Some((_, path)) = &mut self.side.borrow_mut().duplicate {
            path.push(segment());
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(child) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.locate(|| items.len().to_string());
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                self.side.borrow_mut().duplicate = Some((key, Vec::new()));
                return Err(de::Error::custom("duplicate member"));
            }
            match map.next_value_seed(child) {
                Ok(v) => {
                    members.insert(key, v);
                }
                Err(e) => {
                    self.locate(|| key);
                    return Err(e);
                }
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"a": [1, -2, 3.5, true, null, "x\u00e9"], "b": {"c": {}}, "d": 18446744073709551615}"#;
        let strict = parse_strict(text.as_bytes(), 32).unwrap();
        let loose: Value = serde_json::from_str(text).unwrap();
        assert_eq!(strict, loose);
        assert_eq!(
            serde_json::to_string(&strict).unwrap(),
            serde_json::to_string(&loose).unwrap(),
            "member order is kept"
        );
    }

    #[test]
    fn a_repeated_member_is_named_with_its_pointer() {
        let err = parse_strict(br#"{"id": "a", "type": "Offer", "id": "b"}"#, 32).unwrap_err();
        assert_eq!(
            err,
            StrictJsonError::DuplicateKey {
                key: "id".into(),
                pointer: "/id".into()
            }
        );
        let err = parse_strict(br#"{"object": {"x": [1, {"a/b": 1, "a/b": 2}]}}"#, 32).unwrap_err();
        assert_eq!(
            err,
            StrictJsonError::DuplicateKey {
                key: "a/b".into(),
                pointer: "/object/x/1/a~1b".into()
            }
        );
        // The same name in sibling objects is fine.
        parse_strict(br#"[{"id": 1}, {"id": 2}]"#, 32).unwrap();
    }

    #[test]
    fn nesting_is_refused_while_parsing() {
        assert_eq!(parse_strict(b"[[1]]", 3).unwrap(), serde_json::json!([[1]]));
        assert_eq!(
            parse_strict(b"[[[1]]]", 3).unwrap_err(),
            StrictJsonError::TooDeep { limit: 3 }
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse_strict(deep.as_bytes(), 32).unwrap_err(),
            StrictJsonError::TooDeep { limit: 32 }
        );
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let err = parse_strict(b"{\n \"id\": x}", 32).unwrap_err();
        assert!(
            matches!(
                err,
                StrictJsonError::Syntax {
                    line: 2,
                    column: 8,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(matches!(
            parse_strict(b"{} {}", 32).unwrap_err(),
            StrictJsonError::Syntax { .. }
        ));
    }
}
