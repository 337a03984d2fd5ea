//! Command-line parsing the way `helm` and `kubectl` do it (spf13/pflag): `--flag value`,
//! `--flag=value`, `-n value`, `-nvalue`, boolean flags with an optional `=true|false`, `--`
//! ending the flags, and an error naming an unknown flag.

use std::collections::HashMap;

/// One flag: every spelling (`["-n", "--namespace"]`) and whether it takes a value.
#[derive(Clone, Copy)]
pub struct Flag {
    pub names: &'static [&'static str],
    pub value: bool,
}

pub const fn flag(names: &'static [&'static str], value: bool) -> Flag {
    Flag { names, value }
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub positional: Vec<String>,
    /// By the flag's first spelling; every occurrence in order (values of repeated flags).
    values: HashMap<&'static str, Vec<String>>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.values.get(name).and_then(|v| v.last()).is_some_and(|v| v != "false")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values.get(name).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// Parses `args` against `flags`; `Err` is the flag the tool would call unknown (or missing a value).
pub fn parse(args: &[String], flags: &[Flag]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    let find = |name: &str| flags.iter().find(|f| f.names.contains(&name));
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.positional.extend(args[i..].iter().cloned());
            break;
        }
        if a == "-" || !a.starts_with('-') {
            out.positional.push(a.clone());
            continue;
        }
        let (name, inline) = if a.starts_with("--") {
            match a.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (a.clone(), None),
            }
        } else {
            // `-n value`, `-nvalue`, `-n=value`.
            let short: String = a.chars().take(2).collect();
            let rest = &a[short.len()..];
            (short, (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_owned()))
        };
        let Some(f) = find(&name) else {
            return Err(format!("unknown flag: {name}"));
        };
        let value = if f.value {
            match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(format!("flag needs an argument: {name}")),
            }
        } else {
            inline.unwrap_or_else(|| "true".to_owned())
        };
        out.values.entry(f.names[0]).or_default().push(value);
    }
    Ok(out)
}

/// A Go duration (`5m0s`, `300s`, `1h`, `90`) in milliseconds; a bare number is seconds, as
/// kubectl reads `--timeout`.
pub fn duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs >= 0.0).then_some((secs * 1000.0) as u64);
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += n * match unit.as_str() {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            _ => return None,
        };
    }
    number.is_empty().then_some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] =
        &[flag(&["-n", "--namespace"], true), flag(&["--wait"], false), flag(&["-f", "--values"], true)];

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_the_pflag_spellings() {
        let p = parse(&args("airbyte ./c.tgz -nairbyte --wait -f a.yaml --values=b.yaml -- --x"), FLAGS).unwrap();
        assert_eq!(p.positional, ["airbyte", "./c.tgz", "--x"]);
        assert_eq!(p.get("-n"), Some("airbyte"));
        assert!(p.has("--wait"));
        assert_eq!(p.all("-f"), ["a.yaml", "b.yaml"]);
        assert!(!parse(&args("--wait=false"), FLAGS).unwrap().has("--wait"));
        assert_eq!(parse(&args("--nope"), FLAGS).unwrap_err(), "unknown flag: --nope");
        assert_eq!(parse(&args("-n"), FLAGS).unwrap_err(), "flag needs an argument: -n");
    }

    #[test]
    fn reads_go_durations() {
        assert_eq!(duration_ms("5m0s"), Some(300_000));
        assert_eq!(duration_ms("300s"), Some(300_000));
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("30"), Some(30_000));
        assert_eq!(duration_ms("5x"), None);
    }
}
