//! Whether a runCommand only reads (issue-notes, "Read-only calls"): the provider table marks
//! `runCommand` as mutating, and the handler overrides that for a command whose every step is a
//! read (`helm status`, `helm get`, `kubectl wait`, `kubectl get`, ...) so dry runs may issue it.
//!
//! The verdict is taken from the command text alone, before anything runs, and errs towards
//! "mutating": a script from the context (`bash install.sh`), a command substitution, a control
//! structure or any program not listed here makes the whole command mutating.

/// Programs that never touch the cluster (the pod's own scratch files do not count).
const LOCAL_TOOLS: &[&str] = &[
    "echo",
    "printf",
    "cat",
    "jq",
    "grep",
    "egrep",
    "awk",
    "head",
    "tail",
    "wc",
    "sort",
    "uniq",
    "true",
    "false",
    "test",
    "[",
    "date",
    "sleep",
    "set",
    "cd",
    "ls",
    "pwd",
    "base64",
    "sha256sum",
    "tr",
    "cut",
    "env",
    "exit",
    "tee",
];
const HELM_READS: &[&str] =
    &["status", "get", "list", "ls", "history", "hist", "version", "show", "inspect", "template", "lint", "env"];
const KUBECTL_READS: &[&str] =
    &["get", "wait", "describe", "logs", "version", "top", "explain", "api-resources", "api-versions", "cluster-info"];
/// Global flags that take a value, so that `helm -n x status` finds `status`.
const VALUE_FLAGS: &[&str] = &["-n", "--namespace", "--kube-context", "--context", "--kubeconfig", "-s", "--server"];

/// True when every simple command of `command` is a read.
pub fn is_read_only(command: &str) -> bool {
    match split(command) {
        Some(steps) => !steps.is_empty() && steps.iter().all(|words| step_reads(words)),
        None => false,
    }
}

fn step_reads(words: &[String]) -> bool {
    let mut words = words.iter().skip_while(|w| is_assignment(w)).map(String::as_str);
    let Some(program) = words.next() else {
        return true;
    };
    let program = program.rsplit('/').next().unwrap_or(program);
    let rest: Vec<&str> = words.collect();
    match program {
        "helm" => subcommand(&rest).is_some_and(|s| HELM_READS.contains(&s)),
        "kubectl" => match subcommand(&rest) {
            Some("rollout") => rest.iter().any(|w| *w == "status" || *w == "history"),
            Some("auth") => rest.contains(&"can-i"),
            Some(s) => KUBECTL_READS.contains(&s),
            None => false,
        },
        // In-cluster GETs (the health check) read; anything sending a body or another method does not.
        "curl" => !rest.iter().any(|w| {
            matches!(*w, "-X" | "--request" | "-d" | "--data" | "--data-raw" | "--data-binary" | "-T" | "--upload-file")
                || w.starts_with("--data")
                || w.starts_with("-X")
        }),
        "sed" => !rest.iter().any(|w| w.starts_with("-i") || *w == "--in-place"),
        p => LOCAL_TOOLS.contains(&p),
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The first word that is not a flag (skipping the values of the global flags that take one).
fn subcommand<'a>(words: &[&'a str]) -> Option<&'a str> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if VALUE_FLAGS.contains(&w) {
            i += 2;
        } else if w.starts_with('-') {
            i += 1;
        } else {
            return Some(w);
        }
    }
    None
}

/// The simple commands of a shell line, as words: split on `;`, `&&`, `||`, `|`, `&` and
/// newlines outside quotes; redirections are dropped. `None` for anything this cannot read
/// safely (command substitution, unbalanced quotes, subshells, control structures).
fn split(command: &str) -> Option<Vec<Vec<String>>> {
    let mut steps = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        '`' => return None,
                        '$' if chars.peek() == Some(&'(') => return None,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => {}
                    c => word.push(c),
                }
            }
            '`' | '(' | ')' | '{' | '}' => return None,
            '$' if chars.peek() == Some(&'(') => return None,
            ';' | '|' | '&' | '\n' => {
                end_word(&mut words, &mut word, &mut in_word);
                while matches!(chars.peek(), Some('|' | '&')) {
                    chars.next();
                }
                if !words.is_empty() {
                    steps.push(std::mem::take(&mut words));
                }
            }
            '>' | '<' => {
                end_word(&mut words, &mut word, &mut in_word);
                // A file descriptor number just before the operator (`2>&1`) is not a word.
                if words.last().is_some_and(|w| w.chars().all(|c| c.is_ascii_digit())) {
                    words.pop();
                }
                while matches!(chars.peek(), Some('>' | '&' | '<')) {
                    chars.next();
                }
                while matches!(chars.peek(), Some(' ' | '\t')) {
                    chars.next();
                }
                // The target: one word, which is not part of the command.
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ';' | '|' | '&') {
                        break;
                    }
                    chars.next();
                }
            }
            '#' if !in_word => {
                end_word(&mut words, &mut word, &mut in_word);
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            c if c.is_whitespace() => end_word(&mut words, &mut word, &mut in_word),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut words, &mut word, &mut in_word);
    if !words.is_empty() {
        steps.push(words);
    }
    const CONTROL: &[&str] =
        &["if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac"];
    if steps.iter().any(|s| CONTROL.contains(&s[0].as_str())) {
        return None;
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::is_read_only;

    #[test]
    fn reads() {
        for c in [
            "helm status airbyte -n airbyte -o json",
            "helm status airbyte -n airbyte -o json; helm get values airbyte -n airbyte -o json",
            "helm -n airbyte get values airbyte -o json 2>&1 && echo done",
            "kubectl wait --for=condition=Available deploy --all -n airbyte --timeout=120s",
            "kubectl get deploy -n airbyte -o json | jq '.items[].metadata.name'",
            "curl -sf http://airbyte-airbyte-server-svc.airbyte.svc:8001/api/v1/health",
            "helm version && kubectl rollout status deploy/airbyte-server -n airbyte",
            "HELM_NAMESPACE=airbyte helm status airbyte > /dev/null",
        ] {
            assert!(is_read_only(c), "{c}");
        }
    }

    #[test]
    fn writes_or_cannot_tell() {
        for c in [
            "bash install.sh",
            "helm upgrade --install airbyte ./airbyte-2.2.0.tgz -n airbyte",
            "helm status airbyte; helm rollback airbyte",
            "kubectl apply -f secret.yaml",
            "kubectl rollout restart deploy/x",
            "echo $(kubectl delete ns x)",
            "if true; then helm uninstall x; fi",
            "curl -X POST http://x.y.svc:80/",
            "sed -i s/a/b/ f",
            "helm status 'unbalanced",
            "",
        ] {
            assert!(!is_read_only(c), "{c}");
        }
    }
}
