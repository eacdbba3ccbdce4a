//! Liberal reading of JSON values, shared by the wire-format parsers: ids
//! and counts may arrive as numbers or as strings, booleans as strings.
//!
//! Bodies are first parsed into `serde_json::Value`; serde_json's recursion
//! limit (128) turns absurdly nested input into an error, never a stack
//! overflow. Error texts produced here never quote values from the body (the
//! token parser relies on this to keep secrets out of messages).

use serde_json::Value;

/// Parses a whole body as JSON.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
}

/// A string, or a number rendered as a string.
pub(crate) fn string_like(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-negative integer given as a number (integral floats too) or a
/// numeric string.
pub(crate) fn u64_like(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A signed integer given as a number (integral floats too) or a numeric
/// string.
pub(crate) fn i64_like(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f <= i64::MAX as f64)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean, or "true"/"false", or 0/1.
pub(crate) fn bool_like(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// The field `key` of `v` when present and not null.
pub(crate) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The first of `keys` that holds a string or number, as text.
pub(crate) fn first_text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| field(v, k))
        .find_map(string_like)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_strings() {
        assert_eq!(u64_like(&json!(7)), Some(7));
        assert_eq!(u64_like(&json!("7")), Some(7));
        assert_eq!(u64_like(&json!(7.0)), Some(7));
        assert_eq!(u64_like(&json!(-1)), None);
        assert_eq!(i64_like(&json!("-3")), Some(-3));
        assert_eq!(string_like(&json!(12)), Some("12".into()));
        assert_eq!(bool_like(&json!("TRUE")), Some(true));
        assert_eq!(
            first_text(&json!({"a": null, "b": 5}), &["a", "b"]),
            Some("5".into())
        );
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let deep = "[".repeat(100_000);
        assert!(parse_json(deep.as_bytes()).is_err());
    }
}
