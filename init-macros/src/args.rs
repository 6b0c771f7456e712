//! The arguments of `#[init_step(...)]`: parsed in one pass (one keyword per option, repeats
//! refused), then checked together for combinations that cannot work.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitInt, LitStr, Path, Token};

/// Every argument, in the order the docs list them.
const NAMES: [&str; 11] = [
    "name",
    "wait",
    "retries",
    "timeout",
    "attempt_timeout",
    "backoff",
    "optional",
    "once",
    "validate",
    "publishes",
    "crate",
];

/// The arguments, for messages: `` `name`, `retries`, ... ``.
fn valid() -> String {
    NAMES.map(|name| format!("`{name}`")).join(", ")
}

/// A duration given as a string literal, with the literal kept for messages and spans.
pub(crate) struct Dur {
    pub(crate) millis: u64,
    pub(crate) lit: LitStr,
}

/// `backoff(initial = "...", max = "...")`; at least one of the two is given.
pub(crate) struct Backoff {
    pub(crate) keyword: Ident,
    pub(crate) initial: Option<Dur>,
    pub(crate) max: Option<Dur>,
}

/// One value of `publishes(...)`: its name and, when given, its keys.
pub(crate) struct Published {
    pub(crate) name: LitStr,
    pub(crate) keys: Option<Vec<LitStr>>,
}

/// The checked arguments.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    /// `wait`: the policy starts from `Policy::wait()`; the keyword, for spans.
    pub(crate) wait: Option<Ident>,
    /// The number of retries after the first attempt, and its literal.
    pub(crate) retries: Option<(u32, LitInt)>,
    pub(crate) timeout: Option<Dur>,
    pub(crate) attempt_timeout: Option<Dur>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) optional: bool,
    pub(crate) once: bool,
    /// The function that checks the step's configuration at validation.
    pub(crate) validate: Option<Path>,
    /// What the step publishes (`publishes()`: nothing).
    pub(crate) publishes: Option<Vec<Published>>,
    pub(crate) krate: Option<Path>,
}

/// The defaults of `Retry::new()` in init-core, against which a half-given `backoff` is checked.
const DEFAULT_INITIAL_MS: u64 = 200;
const DEFAULT_MAX_MS: u64 = 10_000;
/// The same for `Retry::wait()`, with `wait`.
const WAIT_INITIAL_MS: u64 = 100;
const WAIT_MAX_MS: u64 = 1_000;

impl Args {
    /// Parses the tokens inside `#[init_step(...)]`, then checks the combinations.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let args = parse_args.parse2(tokens)?;
        args.check()?;
        Ok(args)
    }

    /// Phase two: rules across arguments. Every broken rule is reported, each on its argument.
    fn check(&self) -> syn::Result<()> {
        let mut errors: Option<syn::Error> = None;
        let mut push = |error: syn::Error| match &mut errors {
            Some(all) => all.combine(error),
            None => errors = Some(error),
        };

        if let (Some(_), Some((0, lit))) = (&self.wait, &self.retries) {
            push(syn::Error::new(
                lit.span(),
                "`retries = 0` makes a single attempt, but `wait` polls until the service is \
                 ready: remove `retries` (a wait has no attempt limit), or bound the wait with \
                 `timeout`",
            ));
        }

        if let (Some((0, _)), Some(backoff)) = (&self.retries, &self.backoff) {
            push(syn::Error::new(
                backoff.keyword.span(),
                "`backoff` has no effect with `retries = 0`: a single attempt never waits; \
                 remove `backoff`, or allow retries (e.g. `retries = 3`)",
            ));
        }

        if let (Some(attempt), Some(step)) = (&self.attempt_timeout, &self.timeout)
            && attempt.millis > step.millis
        {
            push(syn::Error::new(
                attempt.lit.span(),
                format!(
                    "`attempt_timeout = {:?}` is longer than `timeout = {:?}`: the step's \
                     timeout bounds every attempt too; shorten `attempt_timeout` or remove it",
                    attempt.lit.value(),
                    step.lit.value(),
                ),
            ));
        }

        let (default_initial, default_max) = if self.wait.is_some() {
            (WAIT_INITIAL_MS, WAIT_MAX_MS)
        } else {
            (DEFAULT_INITIAL_MS, DEFAULT_MAX_MS)
        };
        let preset = if self.wait.is_some() {
            "wait"
        } else {
            "default"
        };
        if let Some(backoff) = &self.backoff {
            match (&backoff.initial, &backoff.max) {
                (Some(initial), Some(max)) if max.millis < initial.millis => {
                    push(syn::Error::new(
                        max.lit.span(),
                        format!(
                            "`backoff` max {:?} is shorter than its initial delay {:?}: delays \
                             grow from `initial` up to `max`; make `max` at least {:?}",
                            max.lit.value(),
                            initial.lit.value(),
                            initial.lit.value(),
                        ),
                    ));
                }
                (Some(initial), None) if initial.millis > default_max => {
                    push(syn::Error::new(
                        initial.lit.span(),
                        format!(
                            "`backoff` initial {:?} is longer than the {preset} max delay ({}): \
                             give a max too, e.g. `backoff(initial = {:?}, max = \"1m\")`",
                            initial.lit.value(),
                            millis_text(default_max),
                            initial.lit.value(),
                        ),
                    ));
                }
                (None, Some(max)) if max.millis < default_initial => {
                    push(syn::Error::new(
                        max.lit.span(),
                        format!(
                            "`backoff` max {:?} is shorter than the {preset} initial delay \
                             ({}): give an initial delay too, e.g. \
                             `backoff(initial = \"50ms\", max = {:?})`",
                            max.lit.value(),
                            millis_text(default_initial),
                            max.lit.value(),
                        ),
                    ));
                }
                _ => {}
            }
        }

        errors.map_or(Ok(()), Err)
    }
}

/// Phase one: `key = value` pairs and flags separated by commas; each key at most once.
fn parse_args(input: ParseStream<'_>) -> syn::Result<Args> {
    let mut args = Args::default();
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        let key = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected an argument, one of {}", valid()),
            )
        })?;
        let key_text = key.unraw().to_string();
        if seen.contains(&key_text) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key_text}` is given twice; keep one"),
            ));
        }
        match key_text.as_str() {
            "name" => {
                let lit =
                    string_value(input, &key, "the step's name, e.g. `name = \"warm-cache\"`")?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`name` is empty: expected the step's name, e.g. `name = \"warm-cache\"`",
                    ));
                }
                args.name = Some(lit);
            }
            "wait" => {
                flag(input, &key)?;
                args.wait = Some(key.clone());
            }
            "retries" => args.retries = Some(retries(input, &key)?),
            "timeout" => args.timeout = Some(duration_value(input, &key)?),
            "attempt_timeout" => args.attempt_timeout = Some(duration_value(input, &key)?),
            "backoff" => args.backoff = Some(backoff(input, key.clone())?),
            "optional" => {
                flag(input, &key)?;
                args.optional = true;
            }
            "once" => {
                flag(input, &key)?;
                args.once = true;
            }
            "validate" => args.validate = Some(validate(input, &key)?),
            "publishes" => args.publishes = Some(publishes(input, &key)?),
            "crate" => {
                let lit =
                    string_value(input, &key, "a path to initkit, e.g. `crate = \"initkit\"`")?;
                args.krate = Some(lit.parse_with(Path::parse_mod_style).map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "`crate = {:?}` is not a path: expected the path of the `initkit` \
                             (or `init_core`) crate, e.g. `crate = \"initkit\"`",
                            lit.value()
                        ),
                    )
                })?);
            }
            _ => {
                let hint = closest(&key_text)
                    .map(|near| format!(" (did you mean `{near}`?)"))
                    .unwrap_or_default();
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{key_text}`{hint}: expected one of {}",
                        valid()
                    ),
                ));
            }
        }
        seen.push(key_text);
        if input.is_empty() {
            break;
        }
        input
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `,` between arguments"))?;
    }
    Ok(args)
}

/// `= "..."`, after `key`.
fn string_value(input: ParseStream<'_>, key: &Ident, expected: &str) -> syn::Result<LitStr> {
    eq(input, key, expected)?;
    input
        .parse::<LitStr>()
        .map_err(|e| syn::Error::new(e.span(), format!("`{key}` expects a string: {expected}")))
}

/// `= "<duration>"`, after `key`.
fn duration_value(input: ParseStream<'_>, key: &Ident) -> syn::Result<Dur> {
    let expected = format!("a duration such as `{key} = \"30s\"`");
    eq(input, key, &expected)?;
    let lit = input.parse::<LitStr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{key}` expects a string with a unit, e.g. `{key} = \"30s\"`, \
                 `\"500ms\"`, `\"2m\"`"
            ),
        )
    })?;
    duration(lit)
}

fn eq(input: ParseStream<'_>, key: &Ident, expected: &str) -> syn::Result<()> {
    input
        .parse::<Token![=]>()
        .map(drop)
        .map_err(|_| syn::Error::new(key.span(), format!("`{key}` needs a value: {expected}")))
}

/// `= N`: the retries after the first attempt.
fn retries(input: ParseStream<'_>, key: &Ident) -> syn::Result<(u32, LitInt)> {
    let expected = "the number of retries after the first attempt, e.g. `retries = 3`";
    eq(input, key, expected)?;
    let lit = input
        .parse::<LitInt>()
        .map_err(|e| syn::Error::new(e.span(), format!("`retries` expects {expected}")))?;
    let count = lit
        .base10_parse::<u32>()
        .ok()
        .filter(|n| n.checked_add(1).is_some())
        .ok_or_else(|| {
            syn::Error::new(
                lit.span(),
                format!("`retries = {lit}`: expected {expected}, below 4294967295"),
            )
        })?;
    Ok((count, lit))
}

/// `wait`, `optional`, `once`: a bare keyword.
fn flag(input: ParseStream<'_>, key: &Ident) -> syn::Result<()> {
    if input.peek(Token![=]) || input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` takes no value: write `{key}` alone"),
        ));
    }
    Ok(())
}

/// `= path::to::check`, after `validate`.
fn validate(input: ParseStream<'_>, key: &Ident) -> syn::Result<Path> {
    const EXPECTED: &str = "the path of a function `fn(&ValidateContext<'_>) -> \
                            Result<(), StepError>`, e.g. `validate = check_config`";
    eq(input, key, EXPECTED)?;
    if input.peek(LitStr) {
        let lit = input.parse::<LitStr>()?;
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`validate` takes a path, not a string: write `validate = {}`",
                lit.value()
            ),
        ));
    }
    input
        .parse::<Path>()
        .map_err(|e| syn::Error::new(e.span(), format!("`validate` expects {EXPECTED}")))
}

/// `("db": ["user", "password"], "flags")`, after `publishes`: each name once, each with its
/// keys when they are known. `publishes()` declares that the step publishes nothing.
fn publishes(input: ParseStream<'_>, key: &Ident) -> syn::Result<Vec<Published>> {
    const FORM: &str = "`publishes(\"db\": [\"username\", \"password\"], \"flags\")`";
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            format!(
                "`publishes` takes the names the step publishes, each with its keys when known: {FORM}"
            ),
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let mut published: Vec<Published> = Vec::new();
    while !content.is_empty() {
        let name = content.parse::<LitStr>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("`publishes` expects a name as a string: {FORM}"),
            )
        })?;
        publishable(&name, "name")?;
        if published.iter().any(|p| p.name.value() == name.value()) {
            return Err(syn::Error::new(
                name.span(),
                format!("`publishes` names {:?} twice; keep one", name.value()),
            ));
        }
        let keys = if content.peek(Token![:]) {
            content.parse::<Token![:]>()?;
            Some(keys(&content, &name, FORM)?)
        } else {
            None
        };
        published.push(Published { name, keys });
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `,` between the values of `publishes`: {FORM}"),
            )
        })?;
    }
    Ok(published)
}

/// `["user", "password"]`: the keys of the value published as `name`, each once.
fn keys(input: ParseStream<'_>, name: &LitStr, form: &str) -> syn::Result<Vec<LitStr>> {
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            input.span(),
            format!(
                "the keys of {:?} go in brackets, as strings: {form}",
                name.value()
            ),
        ));
    }
    let content;
    syn::bracketed!(content in input);
    let mut keys: Vec<LitStr> = Vec::new();
    while !content.is_empty() {
        let key = content.parse::<LitStr>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("the keys of {:?} are strings: {form}", name.value()),
            )
        })?;
        publishable(&key, "key")?;
        if keys.iter().any(|k| k.value() == key.value()) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "key {:?} of {:?} is given twice; keep one",
                    key.value(),
                    name.value()
                ),
            ));
        }
        keys.push(key);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(keys)
}

/// A name or key of `publishes`: not empty, no dot (a reference splits at dots).
fn publishable(lit: &LitStr, what: &str) -> syn::Result<()> {
    let value = lit.value();
    if value.trim().is_empty() || value.contains('.') {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`publishes` {what} {value:?}: expected a {what} without dots, as templates \
                 write it after `values.`"
            ),
        ));
    }
    Ok(())
}

/// `1000` -> `1s`, `200` -> `200ms`, for messages.
fn millis_text(millis: u64) -> String {
    if millis.is_multiple_of(1_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

/// `(initial = "...", max = "...")`, after `backoff`.
fn backoff(input: ParseStream<'_>, keyword: Ident) -> syn::Result<Backoff> {
    const FORM: &str = "`backoff(initial = \"200ms\", max = \"5s\")`";
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            keyword.span(),
            format!("`backoff` takes the initial and the maximum delay: {FORM}"),
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let mut backoff = Backoff {
        keyword,
        initial: None,
        max: None,
    };
    while !content.is_empty() {
        let key = content.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(e.span(), format!("expected `initial` or `max`: {FORM}"))
        })?;
        let slot = match key.to_string().as_str() {
            "initial" => &mut backoff.initial,
            "max" => &mut backoff.max,
            other => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown `backoff` argument `{other}`: expected `initial` or `max`: {FORM}"
                    ),
                ));
            }
        };
        if slot.is_some() {
            return Err(syn::Error::new(
                key.span(),
                format!("`backoff` `{key}` is given twice; keep one"),
            ));
        }
        *slot = Some(duration_value(&content, &key)?);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    if backoff.initial.is_none() && backoff.max.is_none() {
        return Err(syn::Error::new(
            backoff.keyword.span(),
            format!("`backoff` is empty: give `initial`, `max` or both: {FORM}"),
        ));
    }
    Ok(backoff)
}

/// A duration literal checked at compile time, or an error on that literal.
fn duration(lit: LitStr) -> syn::Result<Dur> {
    match parse_duration(&lit.value()) {
        Ok(millis) => Ok(Dur { millis, lit }),
        Err(reason) => Err(syn::Error::new(
            lit.span(),
            format!("bad duration {:?}: {reason}", lit.value()),
        )),
    }
}

/// Milliseconds in `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"`: whole numbers, each followed by
/// a unit, units from the largest to the smallest, each once; greater than zero.
fn parse_duration(text: &str) -> Result<u64, String> {
    const FORM: &str = "expected whole numbers with units (h, m, s, ms), \
                        e.g. \"500ms\", \"30s\", \"2m\", \"1m30s\"";
    // Units from the largest; the index orders them.
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    if rest.is_empty() {
        return Err(FORM.to_owned());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(FORM.to_owned());
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let (unit, after) = after.split_at(letters);
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(if unit.is_empty() {
                format!("`{number}` has no unit; {FORM}")
            } else {
                format!("unknown unit `{unit}`; {FORM}")
            });
        };
        if last_unit.is_some_and(|last| index <= last) {
            return Err(format!(
                "units go from the largest to the smallest, each once; {FORM}"
            ));
        }
        last_unit = Some(index);
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[index].1));
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| "too large".to_owned())?;
        rest = after;
    }
    if total == 0 {
        return Err("expected a duration greater than zero".to_owned());
    }
    Ok(total)
}

/// The valid argument a misspelt or misremembered one probably means, if any.
fn closest(unknown: &str) -> Option<&'static str> {
    // Names that other libraries (and `Policy` itself) use for the same thing.
    const ALIASES: [(&str, &str); 10] = [
        ("poll", "wait"),
        ("check", "validate"),
        ("publish", "publishes"),
        ("provides", "publishes"),
        ("retry", "retries"),
        ("attempts", "retries"),
        ("max_attempts", "retries"),
        ("deadline", "timeout"),
        ("on_failure", "optional"),
        ("delay", "backoff"),
    ];
    if let Some((_, name)) = ALIASES.iter().find(|(alias, _)| *alias == unknown) {
        return Some(name);
    }
    if unknown.len() >= 3
        && let Some(name) = NAMES.iter().find(|name| name.starts_with(unknown))
    {
        return Some(name);
    }
    NAMES
        .into_iter()
        .map(|name| (edit_distance(unknown, name), name))
        .filter(|(distance, name)| *distance <= 2 && *distance < name.len() / 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance, for the "did you mean" hint.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_each_unit_and_compounds() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("1h2m3s4ms", 3_723_004),
        ];
        for (text, millis) in cases {
            assert_eq!(parse_duration(text), Ok(millis), "{text}");
        }
    }

    #[test]
    fn durations_refuse_what_is_ambiguous_or_empty() {
        let cases = [
            ("", "expected whole numbers"),
            ("30", "`30` has no unit"),
            ("30 s", "unknown unit"),
            ("3d", "unknown unit `d`"),
            ("1.5s", "unknown unit"),
            ("30s1m", "largest to the smallest"),
            ("1s1s", "largest to the smallest"),
            ("0s", "greater than zero"),
            ("99999999999999999999h", "too large"),
            ("s", "expected whole numbers"),
        ];
        for (text, reason) in cases {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err:?} lacks {reason:?}");
        }
    }

    #[test]
    fn misspelt_arguments_get_a_hint() {
        assert_eq!(closest("retry"), Some("retries"));
        assert_eq!(closest("timout"), Some("timeout"));
        assert_eq!(closest("optinal"), Some("optional"));
        assert_eq!(closest("time"), Some("timeout"));
        assert_eq!(closest("max_attempts"), Some("retries"));
        assert_eq!(closest("parallel"), None);
    }
}
