//! Strict means strict: no filter turns an undefined value into output. Minijinja's strict
//! mode already refuses printing, iterating and testing an undefined value, but several
//! built-in filters take any value (`join`, `escape`, `pprint`, `groupby`, `chain`, `zip` print
//! something for it) and others fail without saying it was undefined (`length`, `first`). Each
//! built-in filter is registered again here behind a check that fails with an undefined-value
//! error, which the render turns into `file:line: undefined value values.db.pasword`.

use std::sync::LazyLock;

use minijinja::value::{Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, ErrorKind, State, filters};

/// `Ok` unless `value` is undefined.
pub(super) fn defined(value: &Value) -> Result<(), minijinja::Error> {
    if value.is_undefined() {
        Err(minijinja::Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

/// `Ok` unless `value` or anything inside it (a list item, a map value) is undefined:
/// `{{ {"password": values.db.pasword} | tojson }}` would print `null` otherwise.
pub(super) fn defined_throughout(value: &Value) -> Result<(), minijinja::Error> {
    defined(value)?;
    let is_map = match value.kind() {
        ValueKind::Map => true,
        ValueKind::Seq => false,
        // A string iterates over its characters: nothing inside can be undefined.
        _ => return Ok(()),
    };
    for item in value.try_iter()? {
        if is_map {
            defined_throughout(&value.get_item(&item)?)?;
        } else {
            defined_throughout(&item)?;
        }
    }
    Ok(())
}

/// The built-in filters that take a value, by name; `default` and `d` are left out, they are
/// there to handle a missing value.
static BUILTINS: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
    vec![
        ("safe", Value::from_function(filters::safe)),
        ("escape", Value::from_function(filters::escape)),
        ("e", Value::from_function(filters::escape)),
        ("lower", Value::from_function(filters::lower)),
        ("upper", Value::from_function(filters::upper)),
        ("title", Value::from_function(filters::title)),
        ("capitalize", Value::from_function(filters::capitalize)),
        ("replace", Value::from_function(filters::replace)),
        ("length", Value::from_function(filters::length)),
        ("count", Value::from_function(filters::length)),
        ("dictsort", Value::from_function(filters::dictsort)),
        ("items", Value::from_function(filters::items)),
        ("reverse", Value::from_function(filters::reverse)),
        ("trim", Value::from_function(filters::trim)),
        ("join", Value::from_function(filters::join)),
        ("split", Value::from_function(filters::split)),
        ("lines", Value::from_function(filters::lines)),
        ("round", Value::from_function(filters::round)),
        ("abs", Value::from_function(filters::abs)),
        ("int", Value::from_function(filters::int)),
        ("float", Value::from_function(filters::float)),
        ("attr", Value::from_function(filters::attr)),
        ("first", Value::from_function(filters::first)),
        ("last", Value::from_function(filters::last)),
        ("min", Value::from_function(filters::min)),
        ("max", Value::from_function(filters::max)),
        ("sort", Value::from_function(filters::sort)),
        ("list", Value::from_function(filters::list)),
        ("string", Value::from_function(filters::string)),
        ("bool", Value::from_function(filters::bool)),
        ("batch", Value::from_function(filters::batch)),
        ("slice", Value::from_function(filters::slice)),
        ("sum", Value::from_function(filters::sum)),
        ("indent", Value::from_function(filters::indent)),
        ("select", Value::from_function(filters::select)),
        ("reject", Value::from_function(filters::reject)),
        ("selectattr", Value::from_function(filters::selectattr)),
        ("rejectattr", Value::from_function(filters::rejectattr)),
        ("map", Value::from_function(filters::map)),
        ("groupby", Value::from_function(filters::groupby)),
        ("unique", Value::from_function(filters::unique)),
        ("chain", Value::from_function(filters::chain)),
        ("zip", Value::from_function(filters::zip)),
        ("pprint", Value::from_function(filters::pprint)),
        ("format", Value::from_function(filters::format)),
    ]
});

/// Registers every built-in filter again, refusing an undefined input (and, for those that
/// combine several, an undefined argument: `chain`, `zip`).
pub(super) fn add_strict_builtins(env: &mut Environment<'static>) {
    for (name, filter) in BUILTINS.iter() {
        let filter = filter.clone();
        let combines = matches!(*name, "chain" | "zip");
        env.add_filter(
            *name,
            // `ValueOrKwargs`: keyword arguments (`indent(2, first=true)`) pass through.
            move |state: &mut State<'_, '_>, value: Value, Rest(args): Rest<ValueOrKwargs>| {
                defined(&value)?;
                if combines {
                    args.iter().try_for_each(|arg| defined(arg))?;
                }
                let mut all = Vec::with_capacity(args.len() + 1);
                all.push(value);
                all.extend(args.into_iter().map(ValueOrKwargs::into_value));
                filter.call(state, &all)
            },
        );
    }
}
