//! The variables of one call, and reading values out of a JSON answer.

use std::collections::HashMap;

use crate::template::Vars;

#[derive(Debug, Clone, Default)]
pub(crate) struct CallVars {
    pub(crate) named: HashMap<String, String>,
    pub(crate) captures: Vec<String>,
}

impl CallVars {
    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.named.insert(name.to_owned(), value);
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.named.get(name).map_or("", String::as_str)
    }
}

impl Vars for CallVars {
    fn named(&self, name: &str) -> Option<&str> {
        self.named.get(name).map(String::as_str)
    }

    fn capture(&self, index: usize) -> Option<&str> {
        index
            .checked_sub(1)
            .and_then(|i| self.captures.get(i))
            .map(String::as_str)
    }
}

/// The value at `path` (`customer.name`, `items.0.id`) as text: strings as they are, numbers
/// and booleans written out, null or missing as empty, objects and arrays as JSON.
pub(crate) fn json_at(root: &serde_json::Value, path: &str) -> String {
    let mut value = root;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        let next = match value {
            serde_json::Value::Object(map) => map.get(key),
            serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return String::new(),
        }
    }
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Percent-encodes a value put into a URL (RFC 3986 unreserved characters stay).
pub(crate) fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a":{"b":"x","n":3,"t":true,"z":null},"l":[{"id":7}]}"#)
                .unwrap_or_default();
        assert_eq!(json_at(&v, "a.b"), "x");
        assert_eq!(json_at(&v, "a.n"), "3");
        assert_eq!(json_at(&v, "a.t"), "true");
        assert_eq!(json_at(&v, "a.z"), "");
        assert_eq!(json_at(&v, "l.0.id"), "7");
        assert_eq!(json_at(&v, "missing.x"), "");
        assert_eq!(json_at(&v, "l"), r#"[{"id":7}]"#);
    }

    #[test]
    fn url_values_are_encoded() {
        assert_eq!(url_encode("Anna Müller&x"), "Anna%20M%C3%BCller%26x");
        assert_eq!(url_encode("+49-30_1.2~"), "%2B49-30_1.2~");
    }
}
