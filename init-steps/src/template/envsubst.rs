//! The envsubst template syntax used by `Render::envsubst` (`${VAR}`, `${VAR:-default}`,
//! `${VAR-default}` and `$$`) and rendering it.

use std::path::Path;

use init_core::{Context, Reference, StepError};

/// A piece of a parsed envsubst template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Text copied as it is (`$$` already turned into `$`).
    Text(&'a str),
    /// `${name}`, `${name:-default}` or `${name-default}`, on `line`.
    Var {
        name: &'a str,
        default: Option<Default<'a>>,
        line: usize,
    },
}

/// The fallback of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Default<'a> {
    /// `${VAR:-text}`: used when the variable is unset or empty.
    IfEmpty(&'a str),
    /// `${VAR-text}`: used when the variable is unset.
    IfUnset(&'a str),
}

/// A syntax error: its line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SyntaxError {
    pub(super) line: usize,
    pub(super) message: String,
}

/// Splits `source` into text and variables.
pub(super) fn parse(source: &str) -> Result<Vec<Piece<'_>>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut rest = source;
    let mut line = 1;
    while let Some(pos) = rest.find('$') {
        let (text, tail) = rest.split_at(pos);
        line += text.matches('\n').count();
        if let Some(after) = tail.strip_prefix("$$") {
            pieces.push(Piece::Text(&rest[..pos + 1]));
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            if !text.is_empty() {
                pieces.push(Piece::Text(text));
            }
            let close = body.find('}').ok_or_else(|| SyntaxError {
                line,
                message: "\"${\" is not closed by \"}\"".to_owned(),
            })?;
            let inner = &body[..close];
            let name_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let name = &inner[..name_len];
            let default = match &inner[name_len..] {
                "" => None,
                d if d.starts_with(":-") => Some(Default::IfEmpty(&d[2..])),
                d if d.starts_with('-') => Some(Default::IfUnset(&d[1..])),
                _ => None,
            };
            let valid_name = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if !valid_name || (default.is_none() && name_len != inner.len()) {
                return Err(SyntaxError {
                    line,
                    message: format!(
                        "\"${{{inner}}}\": expected ${{NAME}}, ${{NAME:-default}} or ${{NAME-default}}"
                    ),
                });
            }
            pieces.push(Piece::Var {
                name,
                default,
                line,
            });
            line += inner.matches('\n').count();
            rest = &body[close + 1..];
        } else {
            pieces.push(Piece::Text(&rest[..pos + 1]));
            rest = &tail[1..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// Parses an envsubst template; the environment variables it reads, each at `file:line`, the
/// ones with a default guarded.
pub(super) fn check_envsubst(path: &Path, source: &str) -> Result<Vec<Reference>, StepError> {
    let pieces = parse(source)
        .map_err(|e| StepError::invalid(format!("{}:{}: {}", path.display(), e.line, e.message)))?;
    let mut references: Vec<Reference> = Vec::new();
    for piece in pieces {
        if let Piece::Var {
            name,
            default,
            line,
        } = piece
        {
            let reference = Reference::env(name).at(format!("{}:{line}", path.display()));
            let reference = if default.is_some() {
                reference.guarded()
            } else {
                reference
            };
            if !references
                .iter()
                .any(|r| r.path() == reference.path() && r.is_guarded() == reference.is_guarded())
            {
                references.push(reference);
            }
        }
    }
    Ok(references)
}

/// Substitutes the environment into an envsubst template; returns the output and whether it
/// read a secret environment variable.
pub(super) fn render_envsubst(
    path: &Path,
    source: &str,
    ctx: &Context,
) -> Result<(String, bool), StepError> {
    let pieces = parse(source).map_err(|e| {
        StepError::permanent(format!("{}:{}: {}", path.display(), e.line, e.message))
    })?;
    let mut out = String::with_capacity(source.len());
    let mut secret = false;
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var {
                name,
                default,
                line,
            } => match (
                ctx.env(name).inspect(|_| secret |= ctx.is_secret_env(name)),
                default,
            ) {
                (Some(value), Some(Default::IfEmpty(_))) if !value.is_empty() => {
                    out.push_str(&value);
                }
                (Some(value), None | Some(Default::IfUnset(_))) => out.push_str(&value),
                (_, Some(Default::IfEmpty(d) | Default::IfUnset(d))) => {
                    out.push_str(d);
                }
                (None, None) => {
                    return Err(StepError::permanent(format!(
                        "{}:{line}: variable {name} is not set",
                        path.display()
                    )));
                }
            },
        }
    }
    Ok((out, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variables_defaults_and_dollars() {
        let pieces = parse("a=${A}\nb=${B:-x y}$$ $host ${C-}").unwrap();
        assert_eq!(
            pieces,
            [
                Piece::Text("a="),
                Piece::Var {
                    name: "A",
                    default: None,
                    line: 1
                },
                Piece::Text("\nb="),
                Piece::Var {
                    name: "B",
                    default: Some(Default::IfEmpty("x y")),
                    line: 2
                },
                Piece::Text("$"),
                Piece::Text(" $"),
                Piece::Text("host "),
                Piece::Var {
                    name: "C",
                    default: Some(Default::IfUnset("")),
                    line: 2
                },
            ]
        );
    }

    #[test]
    fn refuses_unclosed_and_invalid_names() {
        let err = parse("ok\n${A").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.message, "\"${\" is not closed by \"}\"");
        let err = parse("${1A}").unwrap_err();
        assert_eq!(
            err.message,
            "\"${1A}\": expected ${NAME}, ${NAME:-default} or ${NAME-default}"
        );
        assert!(parse("${A B}").is_err());
    }
}
