//! Argo's expr-lang expressions: `{{=...}}` tags, `valueFrom.expression`
//! and `retryStrategy.expression`, evaluated by the `expr-lang` crate.
//!
//! The environment is Argo's: every variable in force, by its dotted name
//! (`inputs.parameters.n`), nested into maps so `inputs.parameters.n` and
//! `steps['gen-1'].outputs.result` both read it; every value is text, as
//! Argo gives it (`asInt(inputs.parameters.n) + 1`). Added to the crate's
//! functions: Argo's `asInt`, `asFloat`, `jsonpath`, `toJson`, and the
//! `sprig.*` functions in `sprig`. A `{{=...}}` result is written as Argo
//! writes it: text as it is, anything else as Go's JSON (`3`, not `3.0`).

mod functions;
mod render;
mod scan;
mod sprig;
mod sprig_time;

pub use expr::Value;
pub use functions::go_string;
pub use render::{RenderError, go_json_float, to_json};
pub use scan::references;

use expr::{Context, Environment};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// How deeply an expression's brackets may nest. The crate's parser
/// recurses per level, so a file full of `(` would overflow the stack.
pub const MAX_NESTING: usize = 100;

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpressionError {
    /// The text is not an expression.
    #[error("cannot parse expression `{expression}`: {message}")]
    Parse {
        /// The expression as written.
        expression: String,
        /// The parser's message.
        message: String,
    },
    /// Evaluating it failed: an unknown variable or function, a type error,
    /// a function's error.
    #[error("expression `{expression}` failed: {message}")]
    Evaluate {
        /// The expression as written.
        expression: String,
        /// What went wrong.
        message: String,
    },
    /// It gave something other than what its place needs.
    #[error("expression `{expression}` gave {got}, {want}")]
    Result {
        /// The expression as written.
        expression: String,
        /// The value, as Go prints it.
        got: String,
        /// What was needed (`not a boolean`).
        want: &'static str,
    },
}

/// The crate's environment with Argo's functions added, built once.
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    functions::add_argo_functions(&mut env);
    sprig::add_sprig_functions(&mut env);
    env
});

fn parse_error(expression: &str, message: impl ToString) -> ExpressionError {
    ExpressionError::Parse { expression: expression.to_string(), message: message.to_string() }
}

/// Parses `expression`, so lint can report a bad one before anything runs.
pub fn check(expression: &str) -> Result<(), ExpressionError> {
    compile(expression).map(|_| ())
}

fn compile(expression: &str) -> Result<expr::Program, ExpressionError> {
    if expression.trim().is_empty() {
        return Err(parse_error(expression, "empty expression"));
    }
    let depth = scan::nesting(expression);
    if depth > MAX_NESTING {
        return Err(parse_error(expression, format!("brackets nest {depth} deep, more than {MAX_NESTING}")));
    }
    let rewritten = scan::rewrite_maps(&scan::rewrite_sprig(expression));
    // The crate panics on some input it cannot build a tree for; that is a
    // bad expression, not a reason to bring the run down.
    match std::panic::catch_unwind(|| expr::compile(&rewritten)) {
        Ok(compiled) => compiled.map_err(|e| parse_error(expression, unsprig(&e.to_string()))),
        Err(panic) => Err(parse_error(expression, format!("expr-lang cannot build it: {}", panic_text(&panic)))),
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied());
    let text = text.unwrap_or("it panicked");
    text.strip_prefix("internal error: entered unreachable code: ").unwrap_or(text).to_string()
}

/// Messages name sprig functions as the expression wrote them.
fn unsprig(message: &str) -> String {
    message.replace("sprig_", "sprig.")
}

/// Argo's environment from variables by dotted name: `a.b.c = v` becomes
/// map `a`, in it map `b`, in it `c = v`. A name that is also the prefix of
/// another (`inputs.parameters` beside `inputs.parameters.n`) is dropped, as
/// Argo drops it, so the map wins.
pub fn context(vars: &BTreeMap<String, String>) -> Context {
    let mut root: expr::Value = Value::Map(Default::default());
    for (name, value) in vars {
        // Sorted, so the first name from `name.` on is a child if any is.
        let child = format!("{name}.");
        if vars.range(child.clone()..).next().is_some_and(|(k, _)| k.starts_with(&child)) {
            continue;
        }
        insert(&mut root, name, Value::String(value.clone()));
    }
    match root {
        Value::Map(map) => map.into_iter().collect(),
        _ => Context::default(),
    }
}

fn insert(root: &mut Value, name: &str, value: Value) {
    let mut node = root;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        if !matches!(node, Value::Map(_)) {
            *node = Value::Map(Default::default());
        }
        let Value::Map(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        node = map.entry(part.to_string()).or_insert_with(|| Value::Map(Default::default()));
    }
}

/// Evaluates `expression` with the variables `vars`.
pub fn evaluate(expression: &str, vars: &BTreeMap<String, String>) -> Result<Value, ExpressionError> {
    run(expression, &context(vars))
}

/// Evaluates a condition over typed values: each top-level key of `root`
/// (a JSON object) is a variable, numbers stay numbers (`response.statusCode
/// == 201` of an HTTP template).
pub fn evaluate_bool_json(expression: &str, root: serde_json::Value) -> Result<bool, ExpressionError> {
    let ctx = match render::from_json(root) {
        Value::Map(map) => map.into_iter().collect(),
        _ => Context::default(),
    };
    boolean(expression, run(expression, &ctx)?)
}

fn run(expression: &str, ctx: &Context) -> Result<Value, ExpressionError> {
    let program = compile(expression)?;
    let failed = |message: String| ExpressionError::Evaluate { expression: expression.to_string(), message };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ENVIRONMENT.run(&program, ctx))) {
        Ok(result) => result.map_err(|e| failed(unsprig(&e.to_string()))),
        Err(panic) => Err(failed(format!("expr-lang failed: {}", panic_text(&panic)))),
    }
}

/// Evaluates a condition (`retryStrategy.expression`): it must give a boolean.
pub fn evaluate_bool(expression: &str, vars: &BTreeMap<String, String>) -> Result<bool, ExpressionError> {
    boolean(expression, evaluate(expression, vars)?)
}

fn boolean(expression: &str, value: Value) -> Result<bool, ExpressionError> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(ExpressionError::Result {
            expression: expression.to_string(),
            got: go_string(&other),
            want: "not a boolean",
        }),
    }
}

/// The text a `{{=...}}` tag becomes: text as it is, anything else as
/// Go's JSON. Like Argo, a `nil` result is an error.
pub fn tag_text(expression: &str, value: &Value) -> Result<String, ExpressionError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Nil => {
            Err(ExpressionError::Result { expression: expression.to_string(), got: "nil".into(), want: "no value" })
        }
        other => to_json(other)
            .map_err(|e| ExpressionError::Evaluate { expression: expression.to_string(), message: e.to_string() }),
    }
}

/// The text an output parameter gets from `valueFrom.expression`: Go's
/// `%v`, as Argo stores it (`3`, `2.5`, `true`). `nil` is an error.
pub fn parameter_text(expression: &str, value: &Value) -> Result<String, ExpressionError> {
    match value {
        Value::Nil => {
            Err(ExpressionError::Result { expression: expression.to_string(), got: "nil".into(), want: "no value" })
        }
        other => Ok(go_string(other)),
    }
}

#[cfg(test)]
mod tests;
