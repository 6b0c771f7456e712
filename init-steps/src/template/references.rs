//! The reference finder: from a parsed template (minijinja's syntax tree), the published values
//! (`values.*`) and environment variables (`env.*`) it reads, each with its line and whether a
//! missing value is handled there, and the filters and tests it applies.
//!
//! A read is guarded when `default`/`d`/`required` is applied to it, when it is tested with
//! `is defined`/`is undefined`, or when it sits where such a test made it safe
//! (`{% if values.tls is defined %}{{ values.tls.cert }}{% endif %}`,
//! `values.a is defined and values.a.b`). Strict undefined fails on a lookup *on* a missing
//! value, so `values.db.password | default("")` still needs `values.db`: that parent is an
//! unguarded read.

use init_core::{Reference, Source};
use minijinja::machinery::ast::{self, BinOpKind, Expr, Stmt};

use super::lookups::{Lookup, lookup, tested};

/// What a template reads and applies.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Its `values.*` and `env.*` reads, each at `file:line`, the first of each kind only.
    pub(super) references: Vec<Reference>,
    /// The filters it applies, with their lines.
    pub(super) filters: Vec<(String, usize)>,
    /// The tests it applies (`is defined`), with their lines.
    pub(super) tests: Vec<(String, usize)>,
    /// The templates it includes, imports or extends by a constant name, with their lines
    /// and whether they must exist (not `ignore missing`).
    pub(super) loads: Vec<(String, usize, bool)>,
    /// Variables it reads unguarded that are neither `values`, `env`, assigned in the
    /// template, nor one of minijinja's (`range`, `loop`, ...), with their lines: a typo
    /// (`valeus.db`) that fails when it renders.
    pub(super) unknown: Vec<(String, usize)>,
}

/// Filters that handle a missing value themselves.
const GUARD_FILTERS: [&str; 3] = ["default", "d", "required"];

/// Names every template can use without assigning them: minijinja's globals are checked
/// separately (see [`find`]).
const KNOWN: [&str; 6] = ["loop", "self", "super", "caller", "varargs", "kwargs"];

/// Finds what the template `tree` (parsed from `file`) reads and applies; `is_global` says
/// whether a name is one of the environment's globals (`range`, `namespace`, ...).
pub(super) fn find(tree: &Stmt<'_>, file: &str, is_global: impl Fn(&str) -> bool) -> Found {
    let mut finder = Finder {
        file,
        found: Found::default(),
        locals: vec![Vec::new()],
        defined: Vec::new(),
        assigned: Vec::new(),
        other_roots: Vec::new(),
    };
    finder.stmt(tree);
    let Finder {
        mut found,
        assigned,
        other_roots,
        ..
    } = finder;
    // A name assigned anywhere is left alone: scoping and order are the render's to judge.
    for (name, line) in other_roots {
        if !assigned.contains(&name) && !KNOWN.contains(&name) && !is_global(name) {
            found.unknown.push((name.to_owned(), line));
        }
    }
    found
}

struct Finder<'a> {
    file: &'a str,
    found: Found,
    /// Names the template assigns (`set`, `for`, `with`, `import`), per scope: a `values` it
    /// assigned itself is not the context's.
    locals: Vec<Vec<&'a str>>,
    /// Lookups a test made safe where the walk is (`{% if x is defined %}`).
    defined: Vec<Lookup<'a>>,
    /// Every name the template assigns, in any scope.
    assigned: Vec<&'a str>,
    /// Unguarded reads of variables other than `values` and `env`, with their lines.
    other_roots: Vec<(&'a str, usize)>,
}

impl<'a> Finder<'a> {
    fn body(&mut self, body: &'a [Stmt<'a>]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &'a Stmt<'a>) {
        match stmt {
            Stmt::Template(t) => self.body(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr, false),
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(f) => {
                self.expr(&f.iter, false);
                self.scoped(Vec::new(), |this| {
                    this.assign(&f.target);
                    this.locals.push(vec!["loop"]);
                    if let Some(filter) = &f.filter_expr {
                        this.expr(filter, false);
                    }
                    this.body(&f.body);
                    this.locals.pop();
                });
                self.scoped(Vec::new(), |this| this.body(&f.else_body));
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr, false);
                let (when_true, when_false) = tested(&i.expr);
                self.scoped(when_true, |this| this.body(&i.true_body));
                self.scoped(when_false, |this| this.body(&i.false_body));
            }
            Stmt::WithBlock(w) => self.scoped(Vec::new(), |this| {
                for (target, value) in &w.assignments {
                    this.expr(value, false);
                    this.assign(target);
                }
                this.body(&w.body);
            }),
            Stmt::Set(s) => {
                self.expr(&s.expr, false);
                self.assign(&s.target);
            }
            Stmt::SetBlock(s) => {
                if let Some(filter) = &s.filter {
                    self.expr(filter, false);
                }
                self.body(&s.body);
                self.assign(&s.target);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled, false);
                self.body(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter, false);
                self.body(&f.body);
            }
            Stmt::Block(b) => self.body(&b.body),
            Stmt::Import(i) => {
                self.load(&i.expr, true);
                self.assign(&i.name);
            }
            Stmt::FromImport(i) => {
                self.load(&i.expr, true);
                for (name, alias) in &i.names {
                    self.assign(alias.as_ref().unwrap_or(name));
                }
            }
            Stmt::Extends(e) => self.load(&e.name, true),
            Stmt::Include(i) => self.load(&i.name, !i.ignore_missing),
            Stmt::Do(d) => self.call(&d.call),
            // Macros and loop controls exist when another crate turns those minijinja
            // features on; their reads are not declared (the render still checks them).
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Visits `expr`; `guard`: a filter or test that handles a missing value is applied to it.
    fn expr(&mut self, expr: &'a Expr<'a>, guard: bool) {
        if let Some(lookup) = lookup(expr) {
            self.read(lookup, usize::from(expr.span().start_line), guard);
            return;
        }
        match expr {
            Expr::Var(_) | Expr::Const(_) => {}
            Expr::GetAttr(g) => self.expr(&g.expr, false),
            Expr::GetItem(g) => {
                self.expr(&g.expr, false);
                self.expr(&g.subscript_expr, false);
            }
            Expr::Slice(s) => {
                self.expr(&s.expr, false);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part, false);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr, false),
            Expr::BinOp(b) => {
                self.expr(&b.left, false);
                // `a is defined and a.b`: the right side runs only when the left allows it.
                let (when_true, when_false) = tested(&b.left);
                let safe = match b.op {
                    BinOpKind::ScAnd => when_true,
                    BinOpKind::ScOr => when_false,
                    _ => Vec::new(),
                };
                self.scoped(safe, |this| this.expr(&b.right, false));
            }
            Expr::Compare(c) => {
                self.expr(&c.expr, false);
                for op in &c.ops {
                    self.expr(&op.expr, false);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr, false);
                let (when_true, when_false) = tested(&i.test_expr);
                self.scoped(when_true, |this| this.expr(&i.true_expr, false));
                if let Some(otherwise) = &i.false_expr {
                    self.scoped(when_false, |this| this.expr(otherwise, false));
                }
            }
            Expr::Filter(f) => {
                let line = usize::from(expr.span().start_line);
                self.found.filters.push((f.name.to_owned(), line));
                if let Some(value) = &f.expr {
                    self.expr(value, GUARD_FILTERS.contains(&f.name));
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                let line = usize::from(expr.span().start_line);
                self.found.tests.push((t.name.to_owned(), line));
                self.expr(&t.expr, matches!(t.name, "defined" | "undefined"));
                self.args(&t.args);
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => l.items.iter().for_each(|item| self.expr(item, false)),
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.expr(item, false)),
            Expr::Map(m) => {
                for (key, value) in m.keys.iter().zip(&m.values) {
                    self.expr(key, false);
                    self.expr(value, false);
                }
            }
        }
    }

    /// A template name: a constant one is followed by the caller, an expression is visited.
    fn load(&mut self, name: &'a Expr<'a>, required: bool) {
        match name {
            Expr::Const(c) if c.value.as_str().is_some() => {
                let line = usize::from(name.span().start_line);
                let name = c.value.as_str().unwrap_or_default().to_owned();
                self.found.loads.push((name, line, required));
            }
            other => self.expr(other, false),
        }
    }

    fn call(&mut self, call: &'a ast::Call<'a>) {
        match &call.expr {
            // A method (`values.app.items()`): the object is read, not a key named `items`.
            Expr::GetAttr(method) => self.expr(&method.expr, false),
            callee => self.expr(callee, false),
        }
        self.args(&call.args);
    }

    fn args(&mut self, args: &'a [ast::CallArg<'a>]) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => self.expr(e, false),
            }
        }
    }

    /// Runs `visit` in a new scope where the lookups `defined` are safe.
    fn scoped(&mut self, defined: Vec<Lookup<'a>>, visit: impl FnOnce(&mut Self)) {
        let before = self.defined.len();
        self.defined.extend(defined);
        self.locals.push(Vec::new());
        visit(self);
        self.locals.pop();
        self.defined.truncate(before);
    }

    fn assign(&mut self, target: &'a Expr<'a>) {
        match target {
            Expr::Var(v) => {
                self.assigned.push(v.id);
                if let Some(scope) = self.locals.last_mut() {
                    scope.push(v.id);
                }
            }
            Expr::List(l) => l.items.iter().for_each(|item| self.assign(item)),
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.assign(item)),
            _ => {}
        }
    }

    /// Records a read of `values.*` or `env.*` on `line`.
    fn read(&mut self, (root, keys): Lookup<'a>, line: usize, guard: bool) {
        let safe = self
            .defined
            .iter()
            .any(|(r, prefix)| *r == root && keys.starts_with(prefix));
        let source = match root {
            "values" => Source::Value,
            "env" => Source::Env,
            _ => {
                // A guard on `foo.bar` handles `bar` only: `foo` must exist.
                let handled = safe || (guard && keys.is_empty());
                if !handled {
                    self.other_roots.push((root, line));
                }
                return;
            }
        };
        if keys.is_empty() || self.locals.iter().any(|scope| scope.contains(&root)) {
            return;
        }
        let at = format!("{}:{line}", self.file);
        match source {
            Source::Value => {
                if guard && !safe && keys.len() > 1 {
                    // The guard handles the last key only; a lookup on a missing parent fails.
                    let parent = keys[..keys.len() - 1].join(".");
                    self.push(Reference::value(&parent).at(at.clone()));
                }
                let reference = Reference::value(&keys.join(".")).at(at);
                self.push(if guard || safe {
                    reference.guarded()
                } else {
                    reference
                });
            }
            Source::Env => {
                let reference = Reference::env(keys[0]).at(at);
                self.push(if (guard && keys.len() == 1) || safe {
                    reference.guarded()
                } else {
                    reference
                });
            }
        }
    }

    /// Keeps the first read of each path, guarded or not.
    fn push(&mut self, reference: Reference) {
        let seen = self.found.references.iter().any(|r| {
            r.source() == reference.source()
                && r.path() == reference.path()
                && r.is_guarded() == reference.is_guarded()
        });
        if !seen {
            self.found.references.push(reference);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(source: &str) -> Found {
        let tree = minijinja::machinery::parse(source, "t.j2", Default::default()).unwrap();
        find(&tree, "t.j2", |name| name == "range")
    }

    fn reads(source: &str) -> Vec<String> {
        found(source)
            .references
            .iter()
            .map(|r| {
                let guard = if r.is_guarded() { " (guarded)" } else { "" };
                format!("{} {r}{guard}", r.origin().unwrap_or_default())
            })
            .collect()
    }

    #[test]
    fn finds_values_and_env_reads_with_their_lines() {
        assert_eq!(
            reads("a {{ values.db.password }}\n{{ env.HOME }} {{ values[\"app\"].port }}"),
            [
                "t.j2:1 values.db.password",
                "t.j2:2 env.HOME",
                "t.j2:2 values.app.port"
            ]
        );
    }

    #[test]
    fn a_default_or_required_guards_the_last_key_only() {
        assert_eq!(
            reads("{{ values.db.pw | default('') }}{{ values.opt | d }}{{ env.X | required }}"),
            [
                "t.j2:1 values.db",
                "t.j2:1 values.db.pw (guarded)",
                "t.j2:1 values.opt (guarded)",
                "t.j2:1 env.X (guarded)"
            ]
        );
    }

    #[test]
    fn reads_under_an_is_defined_test_are_guarded() {
        assert_eq!(
            reads(
                "{% if values.tls is defined %}{{ values.tls.cert }}{% else %}{{ values.x }}{% endif %}\n\
                 {{ values.a.b if values.a is defined and env.Z is defined }}\n\
                 {% if values.c is undefined or values.c.d %}{% endif %}"
            ),
            [
                "t.j2:1 values.tls (guarded)",
                "t.j2:1 values.tls.cert (guarded)",
                "t.j2:1 values.x",
                "t.j2:2 values.a (guarded)",
                "t.j2:2 env.Z (guarded)",
                "t.j2:2 values.a.b (guarded)",
                "t.j2:3 values.c (guarded)",
                "t.j2:3 values.c.d (guarded)"
            ]
        );
    }

    #[test]
    fn local_names_methods_and_whole_values_are_not_reads() {
        assert_eq!(
            reads(
                "{% for h in values.app.hosts %}{{ h.name }}{{ loop.index }}{% endfor %}\
                 {{ values.app.items() }}{{ values | tojson }}{{ range(3) }}\
                 {% set values = {'x': 1} %}{{ values.y }}"
            ),
            ["t.j2:1 values.app.hosts", "t.j2:1 values.app"]
        );
    }

    #[test]
    fn finds_filters_and_tests_with_their_lines() {
        let found = found(
            "{# x|nope #}{{ a | upper }}\n{% raw %}{{ b|nope }}{% endraw %}\n\
             {{ \"|nope\" ~ c|lower }}\n{% filter trim %}x{% endfilter %}{{ a is odd }}",
        );
        assert_eq!(
            found.filters,
            [
                ("upper".to_owned(), 1),
                ("lower".to_owned(), 3),
                ("trim".to_owned(), 4)
            ]
        );
        assert_eq!(found.tests, [("odd".to_owned(), 4)]);
    }

    #[test]
    fn finds_unknown_variables_but_not_assigned_guarded_or_global_ones() {
        let found = found(
            "{{ valeus.db }}\n{{ x }}{% set x = 1 %}{% for i in range(2) %}{{ i }}{{ loop.index }}\
             {% endfor %}{{ opt | default(1) }}{% if flag is defined %}{{ flag.on }}{% endif %}\n\
             {{ nope.key | default(1) }}",
        );
        assert_eq!(
            found.unknown,
            [("valeus".to_owned(), 1), ("nope".to_owned(), 3)]
        );
    }

    #[test]
    fn finds_templates_loaded_by_a_constant_name() {
        let found = found(
            "{% include \"a.j2\" ignore missing %}\n{% import \"m.j2\" as m %}\
             {% include name %}{% from \"f.j2\" import x %}",
        );
        assert_eq!(
            found.loads,
            [
                ("a.j2".to_owned(), 1, false),
                ("m.j2".to_owned(), 2, true),
                ("f.j2".to_owned(), 2, true)
            ]
        );
        // `name` is read (an unknown variable), not loaded.
        assert_eq!(found.unknown, [("name".to_owned(), 2)]);
    }
}
