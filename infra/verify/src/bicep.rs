//! A Bicep file as the checks see it: the `tree-sitter-bicep` parse tree turned into
//! declarations and expressions. Only syntax: nothing is evaluated and no module is loaded.

use tree_sitter::{Node, Parser};

/// One parsed `.bicep` file.
#[derive(Debug)]
pub struct File {
    /// Path relative to the infra root, with `/` separators (`modules/apps.bicep`).
    pub path: String,
    pub decls: Vec<Decl>,
    /// ERROR and MISSING nodes: (line, column, what). Any makes the file fail.
    pub syntax_errors: Vec<(usize, usize, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclKind {
    Param,
    Var,
    Resource,
    Module,
    Output,
    /// `metadata`, `type`, `func`, imports, `targetScope`: nothing the checks look into.
    Other,
}

#[derive(Debug)]
pub struct Decl {
    pub kind: DeclKind,
    /// The symbolic name.
    pub name: String,
    /// Resource: `Type@version`; module: its path; param/output: the type's text.
    pub target: String,
    pub existing: bool,
    pub decorators: Vec<Decorator>,
    /// Default (param), value (var, output), body (resource, module: object, `if` or `for`).
    pub value: Option<Expr>,
    pub line: usize,
    /// For a resource declared inside another resource's body: the enclosing symbol.
    pub nested_in: Option<String>,
}

#[derive(Debug)]
pub struct Decorator {
    pub name: String,
    pub args: Vec<Expr>,
}

#[derive(Debug, Clone)]
pub enum StrPart {
    Text(String),
    Interp(Expr),
}

#[derive(Debug, Clone)]
pub enum Expr {
    Str(Vec<StrPart>),
    Int(i64),
    Bool(bool),
    Null,
    Ident(String),
    Object(Vec<Prop>),
    Array(Vec<Expr>),
    /// `f(args)` or `target.f(args)` (`az.resourceGroup()`, `storage.listKeys()`).
    Call {
        func: String,
        target: Option<Box<Expr>>,
        args: Vec<Expr>,
    },
    Member {
        object: Box<Expr>,
        property: String,
    },
    Index {
        object: Box<Expr>,
        index: Box<Expr>,
    },
    For {
        vars: Vec<String>,
        source: Box<Expr>,
        body: Box<Expr>,
    },
    If {
        cond: Box<Expr>,
        body: Box<Expr>,
    },
    Lambda {
        params: Vec<String>,
        body: Box<Expr>,
    },
    /// Operators, ternaries, parentheses: only their operands matter to the checks.
    Other(Vec<Expr>),
}

#[derive(Debug, Clone)]
pub struct Prop {
    pub key: String,
    pub value: Expr,
    pub line: usize,
}

impl Decl {
    pub fn has_decorator(&self, name: &str) -> bool {
        self.decorators.iter().any(|d| d.name == name)
    }

    /// The resource type without its api-version (`Microsoft.KeyVault/vaults`).
    pub fn resource_type(&self) -> &str {
        self.target.split('@').next().unwrap_or("")
    }

    pub fn api_version(&self) -> Option<&str> {
        self.target.split_once('@').map(|(_, v)| v)
    }

    /// The object of a resource or module body, through `if (...)` and `[for ...: ...]`.
    pub fn body(&self) -> &[Prop] {
        self.value.as_ref().map(Expr::body).unwrap_or(&[])
    }

    pub fn prop(&self, key: &str) -> Option<&Expr> {
        find(self.body(), key)
    }

    /// `properties.a.b` of a resource: `path` is dotted below the body.
    pub fn path(&self, path: &str) -> Option<&Expr> {
        let mut parts = path.split('.');
        let mut cur = self.prop(parts.next()?)?;
        for p in parts {
            cur = find(cur.object()?, p)?;
        }
        Some(cur)
    }
}

pub fn find<'a>(props: &'a [Prop], key: &str) -> Option<&'a Expr> {
    props.iter().find(|p| p.key == key).map(|p| &p.value)
}

impl Expr {
    pub fn object(&self) -> Option<&[Prop]> {
        match self {
            Expr::Object(p) => Some(p),
            _ => None,
        }
    }

    fn body(&self) -> &[Prop] {
        match self {
            Expr::Object(p) => p,
            Expr::If { body, .. } | Expr::For { body, .. } => body.body(),
            _ => &[],
        }
    }

    /// The text of a string without interpolation.
    pub fn literal(&self) -> Option<String> {
        match self {
            Expr::Str(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        StrPart::Text(t) => s.push_str(t),
                        StrPart::Interp(_) => return None,
                    }
                }
                Some(s)
            }
            _ => None,
        }
    }

    /// Every identifier the expression refers to, in order, duplicates included. Function names,
    /// property names and lambda or loop variables are not references.
    pub fn references(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_refs(&mut Vec::new(), &mut out);
        out
    }

    fn collect_refs(&self, locals: &mut Vec<String>, out: &mut Vec<String>) {
        match self {
            Expr::Ident(n) => {
                if !locals.contains(n) {
                    out.push(n.clone());
                }
            }
            Expr::Str(parts) => parts.iter().for_each(|p| {
                if let StrPart::Interp(e) = p {
                    e.collect_refs(locals, out)
                }
            }),
            Expr::Object(props) => props.iter().for_each(|p| p.value.collect_refs(locals, out)),
            Expr::Array(items) | Expr::Other(items) => items.iter().for_each(|e| e.collect_refs(locals, out)),
            Expr::Call { target, args, .. } => {
                if let Some(t) = target {
                    t.collect_refs(locals, out);
                }
                args.iter().for_each(|e| e.collect_refs(locals, out));
            }
            Expr::Member { object, .. } => object.collect_refs(locals, out),
            Expr::Index { object, index } => {
                object.collect_refs(locals, out);
                index.collect_refs(locals, out);
            }
            Expr::For { vars, source, body } => {
                source.collect_refs(locals, out);
                let n = locals.len();
                locals.extend(vars.iter().cloned());
                body.collect_refs(locals, out);
                locals.truncate(n);
            }
            Expr::If { cond, body } => {
                cond.collect_refs(locals, out);
                body.collect_refs(locals, out);
            }
            Expr::Lambda { params, body } => {
                let n = locals.len();
                locals.extend(params.iter().cloned());
                body.collect_refs(locals, out);
                locals.truncate(n);
            }
            Expr::Int(_) | Expr::Bool(_) | Expr::Null => {}
        }
    }

    /// Whether a call to `func` (any target) occurs anywhere inside.
    pub fn calls(&self, func: &str) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            if let Expr::Call { func: f, .. } = e {
                found |= f.eq_ignore_ascii_case(func);
            }
        });
        found
    }

    /// Visits this expression and every expression inside it.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Str(parts) => parts.iter().for_each(|p| {
                if let StrPart::Interp(e) = p {
                    e.walk(f)
                }
            }),
            Expr::Object(props) => props.iter().for_each(|p| p.value.walk(f)),
            Expr::Array(items) | Expr::Other(items) => items.iter().for_each(|e| e.walk(f)),
            Expr::Call { target, args, .. } => {
                if let Some(t) = target {
                    t.walk(f);
                }
                args.iter().for_each(|e| e.walk(f));
            }
            Expr::Member { object, .. } => object.walk(f),
            Expr::Index { object, index } => {
                object.walk(f);
                index.walk(f);
            }
            Expr::For { source, body, .. } => {
                source.walk(f);
                body.walk(f);
            }
            Expr::If { cond, body } => {
                cond.walk(f);
                body.walk(f);
            }
            Expr::Lambda { body, .. } => body.walk(f),
            Expr::Int(_) | Expr::Bool(_) | Expr::Null | Expr::Ident(_) => {}
        }
    }

    /// The symbol an expression such as `x`, `x.id`, `x[i]` or `x.properties.y` starts from.
    pub fn root_symbol(&self) -> Option<&str> {
        match self {
            Expr::Ident(n) => Some(n),
            Expr::Member { object, .. } | Expr::Index { object, .. } => object.root_symbol(),
            _ => None,
        }
    }
}

/// Parses Bicep source. Syntax errors are recorded in the file, not returned.
pub fn parse(path: &str, src: &str) -> File {
    let mut parser = Parser::new();
    parser.set_language(&tree_sitter_bicep::LANGUAGE.into()).expect("the bundled Bicep grammar loads");
    let tree = parser.parse(src, None).expect("parsing without a timeout or cancellation returns a tree");
    let root = tree.root_node();
    let mut conv = Converter { src: src.as_bytes(), errors: Vec::new() };
    conv.find_errors(root);
    let mut decls = Vec::new();
    let mut pending: Vec<Decorator> = Vec::new();
    let mut cursor = root.walk();
    for node in root.named_children(&mut cursor) {
        match node.kind() {
            "decorators" => pending.extend(conv.decorators(node)),
            "comment" | "diagnostic_comment" => {}
            _ => {
                let mut decl = conv.declaration(node, None, &mut decls);
                decl.decorators = std::mem::take(&mut pending);
                decls.push(decl);
            }
        }
    }
    File { path: path.to_owned(), decls, syntax_errors: conv.errors }
}

struct Converter<'a> {
    src: &'a [u8],
    errors: Vec<(usize, usize, String)>,
}

impl<'a> Converter<'a> {
    fn text(&self, n: Node) -> String {
        n.utf8_text(self.src).unwrap_or("").to_owned()
    }

    fn find_errors(&mut self, n: Node) {
        if n.is_error() || n.is_missing() {
            let p = n.start_position();
            let what = if n.is_missing() {
                format!("missing {}", n.kind())
            } else {
                let t = self.text(n);
                format!("unexpected `{}`", t.chars().take(40).collect::<String>().replace('\n', " "))
            };
            self.errors.push((p.row + 1, p.column + 1, what));
            if n.is_error() {
                return;
            }
        }
        if n.has_error() {
            let mut c = n.walk();
            for child in n.children(&mut c) {
                self.find_errors(child);
            }
        }
    }

    fn named(n: Node) -> Vec<Node> {
        let mut c = n.walk();
        n.named_children(&mut c).filter(|c| !matches!(c.kind(), "comment" | "diagnostic_comment")).collect()
    }

    fn decorators(&self, n: Node) -> Vec<Decorator> {
        Self::named(n)
            .into_iter()
            .filter_map(|d| Self::named(d).into_iter().next())
            .map(|call| match self.expr(call) {
                Expr::Call { func, args, .. } => Decorator { name: func, args },
                _ => Decorator { name: self.text(call), args: Vec::new() },
            })
            .collect()
    }

    /// A top-level (or nested resource) declaration. Nested resources found in a body are
    /// appended to `extra` as declarations of their own.
    fn declaration(&mut self, n: Node, nested_in: Option<&str>, extra: &mut Vec<Decl>) -> Decl {
        let kind = match n.kind() {
            "parameter_declaration" => DeclKind::Param,
            "variable_declaration" => DeclKind::Var,
            "resource_declaration" => DeclKind::Resource,
            "module_declaration" => DeclKind::Module,
            "output_declaration" => DeclKind::Output,
            _ => DeclKind::Other,
        };
        let children = Self::named(n);
        let name = children.first().filter(|c| c.kind() == "identifier").map(|c| self.text(*c)).unwrap_or_default();
        let mut decl = Decl {
            kind,
            name,
            target: String::new(),
            existing: false,
            decorators: Vec::new(),
            value: None,
            line: n.start_position().row + 1,
            nested_in: nested_in.map(str::to_owned),
        };
        if kind == DeclKind::Other {
            return decl;
        }
        let mut c = n.walk();
        decl.existing = n.children(&mut c).any(|ch| ch.kind() == "existing");
        if let Some(t) = children.get(1) {
            decl.target = match self.expr(*t) {
                e @ Expr::Str(_) if matches!(kind, DeclKind::Resource | DeclKind::Module) => {
                    e.literal().unwrap_or_default()
                }
                _ => self.text(*t),
            };
        }
        let value_node = match kind {
            DeclKind::Var => children.get(1),
            _ => children.get(2),
        };
        if let Some(v) = value_node {
            decl.value = Some(self.expr(*v));
            if kind == DeclKind::Resource {
                self.nested_resources(*v, &decl.name, &decl.target, extra);
            }
        }
        decl
    }

    /// Resources declared inside a resource body: their type is relative to the parent's.
    fn nested_resources(&mut self, body: Node, parent: &str, parent_target: &str, extra: &mut Vec<Decl>) {
        let object = match body.kind() {
            "object" => Some(body),
            "if_statement" | "for_statement" => Self::named(body).into_iter().find(|c| c.kind() == "object"),
            _ => None,
        };
        let Some(object) = object else { return };
        for prop in Self::named(object) {
            if prop.kind() != "object_property" {
                continue;
            }
            if let Some(res) = Self::named(prop).into_iter().find(|c| c.kind() == "resource_declaration") {
                let mut d = self.declaration(res, Some(parent), extra);
                if !d.target.starts_with("Microsoft.") {
                    let (ptype, _) = parent_target.split_once('@').unwrap_or((parent_target, ""));
                    d.target = format!("{ptype}/{}", d.target);
                }
                extra.push(d);
            }
        }
    }

    fn expr(&self, n: Node) -> Expr {
        let kids = Self::named(n);
        match n.kind() {
            "string" => Expr::Str(self.string_parts(n)),
            "number" => Expr::Int(self.text(n).parse().unwrap_or(0)),
            "boolean" => Expr::Bool(self.text(n) == "true"),
            "null" => Expr::Null,
            "identifier" | "property_identifier" | "loop_variable" | "loop_enumerator" => Expr::Ident(self.text(n)),
            "object" => Expr::Object(
                kids.into_iter().filter(|k| k.kind() == "object_property").filter_map(|p| self.prop(p)).collect(),
            ),
            "array" => {
                Expr::Array(kids.into_iter().filter(|k| k.kind() != "decorators").map(|k| self.expr(k)).collect())
            }
            "call_expression" => {
                let func = n.child_by_field_name("function");
                let args = n
                    .child_by_field_name("arguments")
                    .map(|a| Self::named(a).into_iter().map(|x| self.expr(x)).collect())
                    .unwrap_or_default();
                match func.map(|f| self.expr(f)) {
                    Some(Expr::Ident(name)) => Expr::Call { func: name, target: None, args },
                    Some(Expr::Member { object, property }) => {
                        Expr::Call { func: property, target: Some(object), args }
                    }
                    other => Expr::Call { func: String::new(), target: other.map(Box::new), args },
                }
            }
            "member_expression" => {
                let object = n.child_by_field_name("object").map(|o| self.expr(o)).unwrap_or(Expr::Null);
                let property = n.child_by_field_name("property").map(|p| self.text(p)).unwrap_or_default();
                Expr::Member { object: Box::new(object), property }
            }
            "subscript_expression" => Expr::Index {
                object: Box::new(n.child_by_field_name("object").map(|o| self.expr(o)).unwrap_or(Expr::Null)),
                index: Box::new(n.child_by_field_name("index").map(|o| self.expr(o)).unwrap_or(Expr::Null)),
            },
            "for_statement" => {
                let mut vars = Vec::new();
                if let Some(init) = n.child_by_field_name("initializer") {
                    vars.push(self.text(init));
                }
                if let Some(params) = kids.iter().find(|k| k.kind() == "for_loop_parameters") {
                    vars.extend(Self::named(*params).into_iter().map(|p| self.text(p)));
                }
                let body = n.child_by_field_name("body");
                let source = kids
                    .iter()
                    .filter(|k| k.kind() != "for_loop_parameters")
                    .filter(|k| Some(k.id()) != n.child_by_field_name("initializer").map(|i| i.id()))
                    .find(|k| Some(k.id()) != body.map(|b| b.id()))
                    .map(|k| self.expr(*k))
                    .unwrap_or(Expr::Null);
                Expr::For {
                    vars,
                    source: Box::new(source),
                    body: Box::new(body.map(|b| self.expr(b)).unwrap_or(Expr::Null)),
                }
            }
            "if_statement" => {
                let cond = kids.first().map(|c| self.expr(*c)).unwrap_or(Expr::Null);
                let body = kids.get(1).map(|c| self.expr(*c)).unwrap_or(Expr::Null);
                Expr::If { cond: Box::new(cond), body: Box::new(body) }
            }
            "lambda_expression" => {
                let params = match kids.first() {
                    Some(p) if p.kind() == "identifier" => vec![self.text(*p)],
                    Some(p) => Self::named(*p).into_iter().map(|x| self.text(x)).collect(),
                    None => Vec::new(),
                };
                let body = kids.get(1).map(|b| self.expr(*b)).unwrap_or(Expr::Null);
                Expr::Lambda { params, body: Box::new(body) }
            }
            _ => Expr::Other(kids.into_iter().map(|k| self.expr(k)).collect()),
        }
    }

    fn prop(&self, p: Node) -> Option<Prop> {
        let kids = Self::named(p);
        let key_node = kids.first()?;
        if key_node.kind() == "resource_declaration" {
            return None;
        }
        let key = match key_node.kind() {
            "string" => self.expr(*key_node).literal().unwrap_or_else(|| self.text(*key_node)),
            "compatible_identifier" => self.text(*key_node).trim_end_matches('?').to_owned(),
            _ => self.text(*key_node),
        };
        let value = kids.get(1).map(|v| self.expr(*v)).unwrap_or(Expr::Null);
        Some(Prop { key, value, line: p.start_position().row + 1 })
    }

    fn string_parts(&self, n: Node) -> Vec<StrPart> {
        let mut parts = Vec::new();
        let mut c = n.walk();
        for child in n.named_children(&mut c) {
            match child.kind() {
                "string_content" => parts.push(StrPart::Text(self.text(child))),
                "escape_sequence" => parts.push(StrPart::Text(unescape(&self.text(child)))),
                "interpolation" => {
                    if let Some(e) = Self::named(child).into_iter().next() {
                        parts.push(StrPart::Interp(self.expr(e)));
                    }
                }
                _ => {}
            }
        }
        parts
    }
}

fn unescape(seq: &str) -> String {
    match seq {
        "\\n" => "\n".into(),
        "\\r" => "\r".into(),
        "\\t" => "\t".into(),
        "\\'" => "'".into(),
        "\\\\" => "\\".into(),
        "\\$" => "$".into(),
        other => other.trim_start_matches('\\').into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_decorators_and_references() {
        let f = parse(
            "t.bicep",
            "@secure()\nparam a string\nvar c = union(d, { K: e.outputs.f, 'q r': 'x${g}' })\n\
             resource s 'Microsoft.X/y@2020-01-01' = if (ok) {\n  name: 'n'\n  properties: { p: [for (z, i) in w: z.key] }\n}\n",
        );
        assert!(f.syntax_errors.is_empty(), "{:?}", f.syntax_errors);
        assert_eq!(f.decls.len(), 3);
        assert!(f.decls[0].has_decorator("secure"));
        assert_eq!(f.decls[1].value.as_ref().unwrap().references(), ["d", "e", "g"]);
        let s = &f.decls[2];
        assert_eq!((s.resource_type(), s.api_version()), ("Microsoft.X/y", Some("2020-01-01")));
        assert_eq!(s.prop("name").unwrap().literal().as_deref(), Some("n"));
        // The loop variables are not references; the condition and the source are.
        assert_eq!(s.value.as_ref().unwrap().references(), ["ok", "w"]);
    }

    #[test]
    fn spread_syntax_is_a_syntax_error() {
        let f = parse("t.bicep", "var a = {\n  ...b\n  c: 1\n}\n");
        assert!(!f.syntax_errors.is_empty());
        assert_eq!(f.syntax_errors[0].0, 2);
    }

    #[test]
    fn nested_resources_get_the_parent_type() {
        let f = parse(
            "t.bicep",
            "resource sa 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n  \
             resource blob 'blobServices' = {\n    name: 'default'\n  }\n}\n",
        );
        let blob = f.decls.iter().find(|d| d.name == "blob").unwrap();
        assert_eq!(blob.target, "Microsoft.Storage/storageAccounts/blobServices");
        assert_eq!(blob.nested_in.as_deref(), Some("sa"));
    }
}
