//! Lookup chains (`values.db.password`, `values["db"]`) and what a test proves about them:
//! `values.tls is defined` makes `values.tls` and what is below it safe where the test is true,
//! `is undefined` where it is false, through `not`, `and` and `or`.

use minijinja::machinery::ast::{BinOpKind, Expr, UnaryOpKind};

/// A lookup chain on a variable: `values.db["password"]` is `("values", ["db", "password"])`.
pub(super) type Lookup<'a> = (&'a str, Vec<&'a str>);

/// `expr` as a lookup chain on a variable (`values.db.password`, `values["db"]`), if it is one.
pub(super) fn lookup<'a>(expr: &'a Expr<'a>) -> Option<Lookup<'a>> {
    match expr {
        Expr::Var(v) => Some((v.id, Vec::new())),
        Expr::GetAttr(g) => {
            let (root, mut keys) = lookup(&g.expr)?;
            keys.push(g.name);
            Some((root, keys))
        }
        Expr::GetItem(g) => {
            let Expr::Const(key) = &g.subscript_expr else {
                return None;
            };
            let key = key.value.as_str()?;
            let (root, mut keys) = lookup(&g.expr)?;
            keys.push(key);
            Some((root, keys))
        }
        _ => None,
    }
}

/// The lookups `test` proves defined when it is true, and when it is false.
pub(super) fn tested<'a>(test: &'a Expr<'a>) -> (Vec<Lookup<'a>>, Vec<Lookup<'a>>) {
    match test {
        Expr::Test(t) if t.name == "defined" => (lookup(&t.expr).into_iter().collect(), Vec::new()),
        Expr::Test(t) if t.name == "undefined" => {
            (Vec::new(), lookup(&t.expr).into_iter().collect())
        }
        Expr::UnaryOp(u) if matches!(u.op, UnaryOpKind::Not) => {
            let (when_true, when_false) = tested(&u.expr);
            (when_false, when_true)
        }
        Expr::BinOp(b) if matches!(b.op, BinOpKind::ScAnd) => {
            let (mut when_true, _) = tested(&b.left);
            when_true.extend(tested(&b.right).0);
            (when_true, Vec::new())
        }
        Expr::BinOp(b) if matches!(b.op, BinOpKind::ScOr) => {
            let (_, mut when_false) = tested(&b.left);
            when_false.extend(tested(&b.right).1);
            (Vec::new(), when_false)
        }
        _ => (Vec::new(), Vec::new()),
    }
}
