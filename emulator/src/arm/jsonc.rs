//! The lenient JSON ARM's deployment endpoints read (Newtonsoft.Json's defaults): comments,
//! unquoted property names, single-quoted strings and trailing commas. `az deployment group
//! create` relies on it: it splices the template file's text in verbatim behind an unquoted
//! `template:` key, to keep the template's comments and whitespace (azure-cli's
//! `JsonCTemplatePolicy`). This turns such text into strict JSON for serde.

use serde_json::Value;

/// Parses `text` as ARM would; strict JSON passes through unchanged.
pub fn parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    match serde_json::from_slice(text) {
        Ok(v) => Ok(v),
        Err(strict) => match std::str::from_utf8(text) {
            Ok(s) => serde_json::from_str(&normalize(s)).map_err(|_| strict),
            Err(_) => Err(strict),
        },
    }
}

fn normalize(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    // Open containers: a bare word is a property name only directly inside an object.
    let mut open: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => i = copy_string(&chars, i, &mut out),
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            ',' => {
                // A trailing comma: the next significant character closes the container.
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if !matches!(chars.get(j), Some('}') | Some(']')) {
                    out.push(',');
                }
                i += 1;
            }
            c if is_ident_start(c) && open.last() == Some(&'{') && expects_key(&out) => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push('"');
                out.push_str(&word);
                out.push('"');
            }
            c => {
                match c {
                    '{' | '[' => open.push(c),
                    '}' | ']' => {
                        open.pop();
                    }
                    _ => {}
                }
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

/// Whether a property name may start here: right after `{` or `,` (whitespace aside).
fn expects_key(out: &str) -> bool {
    matches!(out.trim_end().chars().last(), Some('{') | Some(','))
}

/// Copies one string literal starting at `chars[i]` as a double-quoted JSON string; returns the
/// index after it.
fn copy_string(chars: &[char], mut i: usize, out: &mut String) -> usize {
    let quote = chars[i];
    out.push('"');
    i += 1;
    while i < chars.len() && chars[i] != quote {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                // `\'` means a plain quote; JSON has no such escape.
                if chars[i + 1] == '\'' {
                    out.push('\'');
                } else {
                    out.push('\\');
                    out.push(chars[i + 1]);
                }
                i += 2;
                continue;
            }
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
        i += 1;
    }
    out.push('"');
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_az_sends() {
        // azure-cli's splice: strict JSON up to an unquoted `template:` holding the file's text.
        let body = "{\"properties\": {\"mode\": \"Incremental\", \"parameters\": {}, template:{\r\n  // a comment\r\n  \"$schema\": \"x\", /* and another */\r\n  \"resources\": [],\r\n}}}";
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            json!({"properties": {"mode": "Incremental", "parameters": {}, "template": {"$schema": "x", "resources": []}}})
        );
    }

    #[test]
    fn strings_keep_what_looks_like_syntax() {
        let body = r#"{a: 'it\'s // not a comment, "quoted"', b: "x,}", c: [true, false, null,], d: {e: true},}"#;
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            json!({"a": "it's // not a comment, \"quoted\"", "b": "x,}", "c": [true, false, null], "d": {"e": true}})
        );
        assert!(parse(b"{\"a\": }").is_err());
    }
}
