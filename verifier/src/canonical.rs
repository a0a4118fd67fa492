//! Canonical JSON (RFC 8785, JCS): the strict parser every entry and leaf
//! goes through, and the serializer, shared by the log (which stores
//! canonical leaves) and by verifiers that re-derive signed bytes.
//!
//! Entry bodies are parsed strictly and re-serialized canonically, so the
//! bytes that get hashed do not depend on how a client formatted them:
//!
//! * duplicate object keys are rejected (RFC 8785 requires I-JSON);
//! * numbers must be integers within ±(2^53 − 1), the range every JSON
//!   implementation represents exactly; fractions and exponents are
//!   rejected, which makes JCS number formatting trivially the decimal form;
//! * object members are sorted by their keys' UTF-16 code units, strings
//!   are escaped exactly as ECMAScript `JSON.stringify` does, and no
//!   whitespace is emitted.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Version of the leaf encoding (the `"v"` member the log adds). Version 2
/// binds agent signatures to the log origin and predicate proofs to their
/// entry, and sorts `"v"` in canonical order; version 1 leaves placed it
/// last and stay readable and provable, but their agent signatures are not
/// checked by this version (docs/FORMAT.md).
pub const LEAF_VERSION: u64 = 2;

/// Largest integer magnitude an entry may hold (`2^53 - 1`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Deepest nesting of arrays and objects an entry may have.
pub const MAX_DEPTH: usize = 32;

/// Parses JSON strictly (see the module docs).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl StrictValue {
    fn nested<E: de::Error>(&self) -> Result<StrictValue, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(StrictValue { depth: self.depth + 1 })
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
            return Err(E::custom(format_args!("integer {v} is outside ±(2^53-1)")));
        }
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER as u64 {
            return Err(E::custom(format_args!("integer {v} is outside ±(2^53-1)")));
        }
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format_args!("number {v} is not an integer; entries hold integers only")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested()?)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(self.nested()?)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Serializes a value canonically (RFC 8785) into `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_canonical_object(map.iter(), out),
    }
}

/// Writes the canonical form of an object made of `members` (each name at
/// most once), e.g. an object's members less some, without copying them.
pub fn write_canonical_object<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    let mut members: Vec<(&String, &Value)> = members.collect();
    members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k, out);
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

/// The canonical bytes of a value.
pub fn to_canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

/// Writes a JSON string with ECMAScript `JSON.stringify` escaping. Runs of
/// bytes that need no escape are copied in one go.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(to_canonical(&parse_strict(s.as_bytes()).unwrap())).unwrap()
    }

    #[test]
    fn sorts_and_strips_whitespace() {
        assert_eq!(canon(r#"{ "b": [1, 2, {"z": null, "a": true}], "a": "x" }"#), r#"{"a":"x","b":[1,2,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn sorts_by_utf16_code_units() {
        // RFC 8785 §3.2.3: U+1D11E (surrogates D834 DD1E) sorts before U+FB33.
        assert_eq!(canon("{\"\u{fb33}\":1,\"\u{1d11e}\":2}"), "{\"\u{1d11e}\":2,\"\u{fb33}\":1}");
    }

    #[test]
    fn escapes_like_ecmascript() {
        assert_eq!(canon(r#""\u0001\b\f\n\r\t\"\\/\u2028\u00e9""#), "\"\\u0001\\b\\f\\n\\r\\t\\\"\\\\/\u{2028}\u{e9}\"");
    }

    #[test]
    fn rejects_what_is_not_canonicalizable() {
        for bad in [r#"{"a":1,"a":2}"#, "1.5", "1e3", "9007199254740992", "-9007199254740992", "[1,]", "{} x"] {
            assert!(parse_strict(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_strict(b"9007199254740991").is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse_strict(deep.as_bytes()).is_err());
    }
}
