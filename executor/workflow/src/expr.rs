//! Argo's small expression languages, as Ferry runs them locally.
//!
//! - [`substitute`] and [`variables`]: `{{name}}` template tags ("simple tags") and Argo's
//!   expression tags (`{{=expr}}`), which the resolver is handed as `=expr` and evaluates with
//!   [`crate::expression`].
//! - [`evaluate_when`]: a step's or task's `when` condition after substitution, with govaluate's
//!   semantics as Argo uses them: bare words are strings, so `heads == heads` holds.
//! - [`parse_depends`] and [`Depends`]: a DAG task's `depends` expression (`A && !B.Failed`),
//!   plus [`from_dependencies`] for the legacy `dependencies` list.
//!
//! Both expression languages share one tokenizer and one recursive-descent parser. `when` has
//! govaluate's regex operators, `=~` and `!~`.

use std::cmp::Ordering;
use std::fmt;

/// Result of this module's functions.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong substituting, parsing or evaluating.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A `{{name}}` tag the resolver does not know.
    #[error("unknown variable `{{{{{name}}}}}` in {}", excerpt(.text))]
    UnknownVariable {
        /// The trimmed tag name.
        name: String,
        /// The text being substituted.
        text: String,
    },
    /// A tag naming an output that a skipped or omitted step never produced.
    #[error("`{{{{{name}}}}}` has no value: {why} (in {})", excerpt(.text))]
    Absent {
        /// The trimmed tag name.
        name: String,
        /// Which step did not run and what would give the value.
        why: String,
        /// The text being substituted.
        text: String,
    },
    /// A `{{` with no `}}` after it.
    #[error("unclosed `{{{{` at offset {position} in {}", excerpt(.text))]
    UnclosedTag {
        /// Byte offset of the `{{`.
        position: usize,
        /// The text being substituted.
        text: String,
    },
    /// An Argo feature Ferry deliberately does not implement.
    #[error("{what} is not supported by Ferry (in {})", excerpt(.text))]
    Unsupported {
        /// The feature, naming the offending tag or operator.
        what: String,
        /// The text or expression containing it.
        text: String,
    },
    /// A malformed `when` or `depends` expression, or an empty `{{}}` tag.
    #[error("syntax error in {}: {message}", excerpt(.expr))]
    Syntax {
        /// The whole expression.
        expr: String,
        /// What is wrong and where (byte offsets).
        message: String,
    },
    /// A `when` operator applied to values it cannot take, or a non-boolean condition.
    #[error("type error in {}: {message}", excerpt(.expr))]
    Type {
        /// The whole expression.
        expr: String,
        /// Which operator got which values.
        message: String,
    },
    /// An expression tag (`{{=...}}`) that does not parse or evaluate.
    #[error(transparent)]
    Expression(#[from] crate::expression::ExpressionError),
    /// A `depends` expression names a task the lookup does not know.
    #[error("depends refers to unknown task `{task}`")]
    UnknownTask {
        /// The task name.
        task: String,
    },
}

/// Quotes `text` for a message, cut short because templates can be whole scripts.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(80) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

fn syntax(expr: &str, message: String) -> Error {
    Error::Syntax { expr: expr.to_string(), message }
}

// ---------------------------------------------------------------------------------------------
// Template tags

/// What a resolver says about one `{{name}}` tag.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Replace the tag with this text.
    Value(String),
    /// Leave the tag exactly as written: the variable is only known later.
    Keep,
    /// No such variable: substitution fails with [`Error::UnknownVariable`].
    Unknown,
    /// An expression tag failed: substitution fails with [`Error::Expression`].
    Failed(crate::expression::ExpressionError),
    /// A known variable with no value: an output of a step that did not
    /// run and declares no default. Substitution fails with [`Error::Absent`]
    /// holding this explanation.
    Absent(String),
}

/// Replaces each `{{ name }}` tag in `text` by what `resolve` says about its trimmed name; an
/// expression tag `{{=expr}}` is handed over as `=expr`.
///
/// Substitution is a single pass, so a `{{` inside a replacement stays as it is. Like Argo's
/// fasttemplate, a tag ends at the first `}}` after its `{{`. Errors: an unclosed `{{`, an empty
/// tag, `{{ =...}}` (an expression tag has its `=` right after `{{`), or a name resolved as
/// [`Resolved::Unknown`] or [`Resolved::Failed`].
pub fn substitute(text: &str, resolve: &mut dyn FnMut(&str) -> Resolved) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    while let Some(found) = text[done..].find("{{") {
        let open = done + found;
        let Some(len) = text[open + 2..].find("}}") else {
            return Err(Error::UnclosedTag { position: open, text: text.to_string() });
        };
        let end = open + 2 + len + 2;
        let raw = &text[open..end];
        let name = match raw[2..raw.len() - 2].strip_prefix('=') {
            Some(expression) => &raw[2..2 + 1 + expression.trim_end().len()],
            None => raw[2..raw.len() - 2].trim(),
        };
        if name.starts_with('=') && !raw.starts_with("{{=") {
            let message = format!("`{raw}` at offset {open}: an expression tag starts with `{{{{=`, with no space");
            return Err(syntax(text, message));
        }
        if name.is_empty() {
            return Err(syntax(text, format!("empty tag `{raw}` at offset {open}")));
        }
        out.push_str(&text[done..open]);
        match resolve(name) {
            Resolved::Value(value) => out.push_str(&value),
            Resolved::Keep => out.push_str(raw),
            Resolved::Unknown => {
                return Err(Error::UnknownVariable { name: name.to_string(), text: text.to_string() });
            }
            Resolved::Failed(e) => return Err(Error::Expression(e)),
            Resolved::Absent(why) => {
                return Err(Error::Absent { name: name.to_string(), why, text: text.to_string() });
            }
        }
        done = end;
    }
    out.push_str(&text[done..]);
    Ok(out)
}

/// The trimmed name of the tag when `text` is exactly one `{{name}}` tag
/// and nothing else (Argo's test for an argument that is a pure reference).
pub fn single_tag(text: &str) -> Option<&str> {
    let name = text.strip_prefix("{{")?.strip_suffix("}}")?;
    (!name.contains("{{") && !name.contains("}}")).then(|| name.trim())
}

/// Lists the trimmed names of the tags in `text`, in order, repeats included.
///
/// Fails exactly where [`substitute`] would before consulting a resolver.
pub fn variables(text: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    substitute(text, &mut |name| {
        names.push(name.to_string());
        Resolved::Keep
    })?;
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and parser shared by `when` and `depends`

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An operator or parenthesis, one of [`SYMBOLS`].
    Op(&'static str),
    Num(f64),
    Str(String),
    Word(String),
}

/// Two-character symbols first, so `<=` is not read as `<` then `=`.
const SYMBOLS: [&str; 13] = ["&&", "||", "==", "!=", "=~", "!~", "<=", ">=", "<", ">", "!", "(", ")"];

/// Binary operators of `when`, loosest first; all are left-associative.
const WHEN_LEVELS: [&[&str]; 3] = [&["||"], &["&&"], &["==", "!=", "=~", "!~", "<", "<=", ">", ">="]];

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn is_atom_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Plain decimals only: `f64::from_str` would also take `inf`, `NaN` and exponents.
fn is_number(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|&b| b == b'.').count() <= 1
}

fn tokenize(expr: &str) -> Result<Vec<Token>> {
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = expr[i..].chars().next() {
        let rest = &expr[i..];
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let (tok, len) = if let Some(op) = SYMBOLS.into_iter().find(|op| rest.starts_with(op)) {
            (Tok::Op(op), op.len())
        } else if c == '"' || c == '\'' {
            lex_string(expr, i, c)?
        } else if is_atom_char(c) {
            let word = &rest[..rest.find(|c| !is_atom_char(c)).unwrap_or(rest.len())];
            let tok = match word.parse() {
                Ok(n) if is_number(word) => Tok::Num(n),
                // `1abc` or `1.2.3` is no number, so like a govaluate variable it is a word.
                _ if c.is_ascii_alphanumeric() || c == '_' => Tok::Word(word.to_string()),
                _ => return Err(syntax(expr, format!("invalid token `{word}` at offset {i}"))),
            };
            (tok, word.len())
        } else {
            let hint = match c {
                '=' => " (did you mean `==`?)",
                '&' => " (did you mean `&&`?)",
                '|' => " (did you mean `||`?)",
                _ => "",
            };
            return Err(syntax(expr, format!("unexpected character `{c}` at offset {i}{hint}")));
        };
        toks.push(Token { tok, start: i, end: i + len });
        i += len;
    }
    Ok(toks)
}

/// Lexes a quoted string starting at `start`; a backslash takes the next character literally.
fn lex_string(expr: &str, start: usize, quote: char) -> Result<(Tok, usize)> {
    let mut value = String::new();
    let mut chars = expr[start + 1..].char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            _ if c == quote => return Ok((Tok::Str(value), at + 2)),
            _ => value.push(c),
        }
    }
    Err(syntax(expr, format!("unterminated string starting at offset {start}")))
}

/// How deep a `when` or `depends` expression may nest: parentheses, `!` and
/// chained binary operators each add a level. Parsing and evaluating
/// recurse per level, so an unbounded depth (a file holds millions of `(`)
/// would overflow the stack; real conditions stay within a handful.
pub const MAX_NESTING: usize = 100;

struct Parser<'a> {
    expr: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// Parentheses and `!` open around the current token.
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn new(expr: &'a str) -> Result<Self> {
        let toks = tokenize(expr)?;
        if toks.is_empty() {
            return Err(syntax(expr, "empty expression".to_string()));
        }
        Ok(Parser { expr, toks, pos: 0, nesting: 0 })
    }

    fn too_deep(&self, depth: usize, at: usize) -> Result<()> {
        if depth > MAX_NESTING {
            return Err(self.error(format!(
                "nested more than {MAX_NESTING} levels deep (parentheses, `!` and chained operators each count) at offset {at}"
            )));
        }
        Ok(())
    }

    /// Enters a parenthesis or `!` at byte `at`.
    fn enter(&mut self, at: usize) -> Result<()> {
        self.nesting += 1;
        self.too_deep(self.nesting, at)
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Token { tok: Tok::Op(op), .. }) => Some(op),
            _ => None,
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        let found = self.peek_op() == Some(op);
        self.pos += usize::from(found);
        found
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.toks.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn error(&self, message: String) -> Error {
        syntax(self.expr, message)
    }

    /// Names a token for a message: as written, and where.
    fn show(&self, t: &Token) -> String {
        format!("`{}` at offset {}", &self.expr[t.start..t.end], t.start)
    }

    fn unexpected(&self, token: Option<&Token>) -> Error {
        match token {
            Some(t) => self.error(format!("unexpected {}", self.show(t))),
            None => self.error("unexpected end of expression".to_string()),
        }
    }

    fn close(&mut self, open: usize) -> Result<()> {
        match self.bump() {
            Some(t) if t.tok == Tok::Op(")") => Ok(()),
            Some(t) => Err(self.error(format!("expected `)` to close `(` at offset {open}, found {}", self.show(&t)))),
            None => Err(self.error(format!("missing `)` to close `(` at offset {open}"))),
        }
    }

    fn finish(&self) -> Result<()> {
        match self.toks.get(self.pos) {
            Some(t) => Err(self.error(format!("unexpected {} after a complete expression", self.show(t)))),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `when`

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Num(f64),
    Str(String),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "number {n}"),
            Value::Str(s) => write!(f, "string {s:?}"),
            Value::Bool(b) => write!(f, "boolean {b}"),
        }
    }
}

enum Node {
    Lit(Value),
    Not(Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
}

impl Parser<'_> {
    /// A node and the depth of its tree, which evaluating recurses through.
    fn when_binary(&mut self, level: usize) -> Result<(Node, usize)> {
        let Some(ops) = WHEN_LEVELS.get(level) else { return self.when_unary() };
        let (mut left, mut depth) = self.when_binary(level + 1)?;
        while let Some(op) = self.peek_op().filter(|op| ops.contains(op)) {
            let at = self.toks[self.pos].start;
            self.pos += 1;
            let (right, right_depth) = self.when_binary(level + 1)?;
            depth = depth.max(right_depth) + 1;
            self.too_deep(depth, at)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn when_unary(&mut self) -> Result<(Node, usize)> {
        let token = self.bump();
        let at = token.as_ref().map_or(0, |t| t.start);
        Ok(match token.as_ref().map(|t| &t.tok) {
            Some(Tok::Op("!")) => {
                self.enter(at)?;
                let (inner, depth) = self.when_unary()?;
                self.nesting -= 1;
                self.too_deep(depth + 1, at)?;
                (Node::Not(Box::new(inner)), depth + 1)
            }
            Some(Tok::Op("(")) => {
                self.enter(at)?;
                let inner = self.when_binary(0)?;
                self.nesting -= 1;
                self.close(at)?;
                inner
            }
            Some(Tok::Num(n)) => (Node::Lit(Value::Num(*n)), 1),
            Some(Tok::Str(s)) => (Node::Lit(Value::Str(s.clone())), 1),
            Some(Tok::Word(w)) => (
                Node::Lit(match w.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Str(w.clone()),
                }),
                1,
            ),
            _ => return Err(self.unexpected(token.as_ref())),
        })
    }
}

/// Evaluates a `when` condition (already substituted) to a boolean.
///
/// Bare words are strings. Numbers compare numerically, strings lexicographically, booleans only
/// with `==`/`!=`; a number equals a string when its canonical text does (`"5" == 5`). Any other
/// pairing, a non-boolean operand of `&&`, `||`, `!`, or a non-boolean result is an
/// [`Error::Type`]. `&&` and `||` short-circuit as in govaluate, so `false && (x > 1)` is false.
pub fn evaluate_when(expr: &str) -> Result<bool> {
    let mut parser = Parser::new(expr)?;
    let (node, _) = parser.when_binary(0)?;
    parser.finish()?;
    match eval(&node, expr)? {
        Value::Bool(b) => Ok(b),
        other => Err(type_error(expr, format!("the condition is a {other}, not a boolean"))),
    }
}

/// `fromExpression`: a reference, or `condition ? reference : reference`
/// where the condition is a `when`-style comparison over step or task
/// values. Returns the chosen reference (such as
/// `steps.gen.outputs.artifacts.out`), with expr-lang's index syntax
/// (`tasks['a-b']`) turned into dots.
pub fn from_expression(text: &str, resolve: &mut dyn FnMut(&str) -> Resolved) -> Result<String> {
    let normalised = normalise_refs(text);
    let Some((cond, branches)) = normalised.split_once('?') else {
        return Ok(normalised.trim().to_string());
    };
    let (yes, no) = branches
        .split_once(':')
        .ok_or_else(|| Error::Syntax { expr: text.to_string(), message: "fromExpression: `?` without `:`".into() })?;
    let mut condition = String::new();
    for word in split_keep(cond) {
        let is_ref = ["steps.", "tasks.", "inputs.", "workflow."].iter().any(|p| word.starts_with(p));
        if is_ref {
            match resolve(word) {
                Resolved::Value(v) => condition.push_str(&format!("'{}'", v.replace('\'', "\\'"))),
                _ => return Err(Error::UnknownVariable { name: word.to_string(), text: text.to_string() }),
            }
        } else {
            condition.push_str(word);
        }
    }
    let chosen = if evaluate_when(&condition.replace('"', "'"))? { yes } else { no };
    Ok(chosen.trim().to_string())
}

/// `tasks['a-b'].outputs` → `tasks.a-b.outputs` (expr-lang's index syntax).
fn normalise_refs(text: &str) -> String {
    let mut out = text.to_string();
    for q in ['\'', '"'] {
        loop {
            let open = format!("[{q}");
            let Some(start) = out.find(&open) else { break };
            let close = format!("{q}]");
            let Some(end) = out[start..].find(&close).map(|e| start + e) else { break };
            let name = out[start + 2..end].to_string();
            out.replace_range(start..end + 2, &format!(".{name}"));
        }
    }
    out.replace("==", " == ").replace("!=", " != ")
}

/// Splits text into words and separators, keeping both.
fn split_keep(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if is_word(c) != in_word {
            if i > start {
                parts.push(&text[start..i]);
            }
            start = i;
            in_word = is_word(c);
        }
    }
    parts.push(&text[start..]);
    parts
}

fn type_error(expr: &str, message: String) -> Error {
    Error::Type { expr: expr.to_string(), message }
}

fn eval_bool(node: &Node, expr: &str, op: &str) -> Result<bool> {
    match eval(node, expr)? {
        Value::Bool(b) => Ok(b),
        other => Err(type_error(expr, format!("`{op}` needs booleans, got {other}"))),
    }
}

fn eval(node: &Node, expr: &str) -> Result<Value> {
    Ok(Value::Bool(match node {
        Node::Lit(value) => return Ok(value.clone()),
        Node::Not(inner) => !eval_bool(inner, expr, "!")?,
        Node::Binary(op @ "&&", l, r) => eval_bool(l, expr, op)? && eval_bool(r, expr, op)?,
        Node::Binary(op @ "||", l, r) => eval_bool(l, expr, op)? || eval_bool(r, expr, op)?,
        Node::Binary(op, l, r) => compare(op, &eval(l, expr)?, &eval(r, expr)?, expr)?,
    }))
}

/// govaluate's `=~`: the left text contains a match of the right pattern (not anchored).
fn regex_match(left: &Value, right: &Value, expr: &str, op: &str) -> Result<bool> {
    let (Value::Str(text), Value::Str(pattern)) = (left, right) else {
        return Err(type_error(expr, format!("`{op}` needs strings, got {left} {op} {right}")));
    };
    let re = regex::Regex::new(pattern)
        .map_err(|e| syntax(expr, format!("invalid regular expression {pattern:?} after `{op}`: {e}")))?;
    Ok(re.is_match(text) == (op == "=~"))
}

fn compare(op: &str, left: &Value, right: &Value, expr: &str) -> Result<bool> {
    if op == "=~" || op == "!~" {
        return regex_match(left, right, expr, op);
    }
    let equality = op == "==" || op == "!=";
    let ordering = match (left, right) {
        // Only digits reach a Num, so there is no NaN to make this `None`.
        (Value::Num(a), Value::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Less),
        (Value::Str(a), Value::Str(b)) => a.cmp(b),
        (Value::Bool(a), Value::Bool(b)) if equality => a.cmp(b),
        (Value::Num(n), Value::Str(s)) | (Value::Str(s), Value::Num(n)) if equality => {
            if n.to_string() == *s {
                Ordering::Equal
            } else {
                Ordering::Less
            }
        }
        _ => return Err(type_error(expr, format!("cannot compare {left} {op} {right}"))),
    };
    Ok(match op {
        "==" => ordering.is_eq(),
        "!=" => ordering.is_ne(),
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    })
}

// ---------------------------------------------------------------------------------------------
// `depends`

/// The phase of a finished task, or of one iteration of a looped task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Ran and succeeded.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Could not run properly (Argo's `Error` phase).
    Error,
    /// Its `when` condition was false.
    Skipped,
    /// Never considered because its own `depends` was not satisfied.
    Omitted,
}

/// What a `depends` evaluation needs to know about one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// The task's own phase.
    pub phase: Phase,
    /// Phases of its expanded loop iterations; empty when the task has no loop.
    pub children: Vec<Phase>,
}

impl From<Phase> for TaskOutcome {
    fn from(phase: Phase) -> Self {
        TaskOutcome { phase, children: Vec::new() }
    }
}

/// The result a `depends` reference asks about, as in `task.Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskResult {
    /// Phase `Succeeded`.
    Succeeded,
    /// Phase `Failed`.
    Failed,
    /// Phase `Error`.
    Errored,
    /// Phase `Skipped`.
    Skipped,
    /// Phase `Omitted`.
    Omitted,
    /// Never true: Ferry has no daemons.
    Daemoned,
    /// At least one loop iteration succeeded.
    AnySucceeded,
    /// There were loop iterations and all failed or errored.
    AllFailed,
}

impl TaskResult {
    /// Every result, in the order Argo documents them.
    pub const ALL: [TaskResult; 8] = [
        TaskResult::Succeeded,
        TaskResult::Failed,
        TaskResult::Errored,
        TaskResult::Skipped,
        TaskResult::Omitted,
        TaskResult::Daemoned,
        TaskResult::AnySucceeded,
        TaskResult::AllFailed,
    ];

    /// The name as written after the dot.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Succeeded => "Succeeded",
            TaskResult::Failed => "Failed",
            TaskResult::Errored => "Errored",
            TaskResult::Skipped => "Skipped",
            TaskResult::Omitted => "Omitted",
            TaskResult::Daemoned => "Daemoned",
            TaskResult::AnySucceeded => "AnySucceeded",
            TaskResult::AllFailed => "AllFailed",
        }
    }

    /// Whether a task with this outcome has this result.
    pub fn holds(self, outcome: &TaskOutcome) -> bool {
        let failed = |p: &Phase| matches!(p, Phase::Failed | Phase::Error);
        match self {
            TaskResult::Succeeded => outcome.phase == Phase::Succeeded,
            TaskResult::Failed => outcome.phase == Phase::Failed,
            TaskResult::Errored => outcome.phase == Phase::Error,
            TaskResult::Skipped => outcome.phase == Phase::Skipped,
            TaskResult::Omitted => outcome.phase == Phase::Omitted,
            TaskResult::Daemoned => false,
            TaskResult::AnySucceeded => outcome.children.contains(&Phase::Succeeded),
            TaskResult::AllFailed => !outcome.children.is_empty() && outcome.children.iter().all(failed),
        }
    }
}

impl fmt::Display for TaskResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `depends` expression.
///
/// The parser never builds an `And` or `Or` of fewer than two operands. An empty `And` (from
/// [`from_dependencies`] on an empty list) is always true and displays as nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Depends {
    /// `task` (`result` is `None`: succeeded, skipped or daemoned) or `task.Result`.
    Task {
        /// The task name.
        task: String,
        /// The result asked about, `None` for a bare name.
        result: Option<TaskResult>,
    },
    /// `!operand`.
    Not(Box<Depends>),
    /// All operands hold.
    And(Vec<Depends>),
    /// Any operand holds.
    Or(Vec<Depends>),
}

/// Parses a DAG task's `depends` expression.
pub fn parse_depends(expr: &str) -> Result<Depends> {
    let mut parser = Parser::new(expr)?;
    let depends = parser.dep_or()?;
    parser.finish()?;
    Ok(depends)
}

/// The legacy `dependencies: [A, B]` list, which means `A && B`.
pub fn from_dependencies(deps: &[String]) -> Depends {
    let tasks = deps.iter().map(|task| Depends::Task { task: task.clone(), result: None }).collect();
    group(tasks, Depends::And)
}

fn group(mut items: Vec<Depends>, make: fn(Vec<Depends>) -> Depends) -> Depends {
    if items.len() == 1 { items.remove(0) } else { make(items) }
}

impl Parser<'_> {
    fn dep_or(&mut self) -> Result<Depends> {
        let mut items = vec![self.dep_and()?];
        while self.eat("||") {
            items.push(self.dep_and()?);
        }
        Ok(group(items, Depends::Or))
    }

    fn dep_and(&mut self) -> Result<Depends> {
        let mut items = vec![self.dep_unary()?];
        while self.eat("&&") {
            items.push(self.dep_unary()?);
        }
        Ok(group(items, Depends::And))
    }

    fn dep_unary(&mut self) -> Result<Depends> {
        let Some(token) = self.bump() else { return Err(self.unexpected(None)) };
        match token.tok {
            Tok::Op("!") => {
                self.enter(token.start)?;
                let inner = self.dep_unary()?;
                self.nesting -= 1;
                Ok(Depends::Not(Box::new(inner)))
            }
            Tok::Op("(") => {
                self.enter(token.start)?;
                let inner = self.dep_or()?;
                self.nesting -= 1;
                self.close(token.start)?;
                Ok(inner)
            }
            // A name like `123` lexes as a number; the text is what matters here.
            Tok::Word(_) | Tok::Num(_) => self.task_ref(&self.expr[token.start..token.end]),
            _ => Err(self.unexpected(Some(&token))),
        }
    }

    fn task_ref(&self, text: &str) -> Result<Depends> {
        let (task, suffix) = match text.split_once('.') {
            Some((task, suffix)) => (task, Some(suffix)),
            None => (text, None),
        };
        if task.is_empty() || !task.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(self.error(format!("invalid task name in `{text}`")));
        }
        let result = match suffix {
            None => None,
            Some(suffix) => Some(TaskResult::ALL.into_iter().find(|r| r.as_str() == suffix).ok_or_else(|| {
                let allowed: Vec<_> = TaskResult::ALL.iter().map(|r| r.as_str()).collect();
                self.error(format!(
                    "unknown task result `{suffix}` in `{text}`; expected one of {}",
                    allowed.join(", ")
                ))
            })?),
        };
        Ok(Depends::Task { task: task.to_string(), result })
    }
}

impl Depends {
    /// The task names referenced, each once, in order of first appearance.
    pub fn tasks(&self) -> Vec<String> {
        fn walk(d: &Depends, out: &mut Vec<String>) {
            match d {
                Depends::Task { task, .. } => {
                    if !out.contains(task) {
                        out.push(task.clone());
                    }
                }
                Depends::Not(inner) => walk(inner, out),
                Depends::And(items) | Depends::Or(items) => items.iter().for_each(|d| walk(d, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// Whether this expression asks about `task` failing (`.Failed`,
    /// `.Errored`, `.AllFailed`, `.AnySucceeded`): such a failure is handled,
    /// and neither fails the DAG nor stops it under `failFast`.
    pub fn handles_failure_of(&self, task: &str) -> bool {
        match self {
            Depends::Task { task: t, result } => {
                t == task
                    && matches!(
                        result,
                        Some(
                            TaskResult::Failed | TaskResult::Errored | TaskResult::AllFailed | TaskResult::AnySucceeded
                        )
                    )
            }
            Depends::Not(inner) => inner.handles_failure_of(task),
            Depends::And(items) | Depends::Or(items) => items.iter().any(|d| d.handles_failure_of(task)),
        }
    }

    /// Evaluates against finished tasks' outcomes; `lookup` returns `None` for an unknown task.
    ///
    /// Every reference is looked up, without short-circuiting, so an unknown task is reported
    /// whatever the other operands say.
    pub fn evaluate(&self, lookup: &dyn Fn(&str) -> Option<TaskOutcome>) -> Result<bool> {
        match self {
            Depends::Task { task, result } => {
                let outcome = lookup(task).ok_or_else(|| Error::UnknownTask { task: task.clone() })?;
                Ok(match result {
                    Some(result) => result.holds(&outcome),
                    // Argo's bare `name` also accepts `Daemoned`, which never holds in Ferry.
                    None => matches!(outcome.phase, Phase::Succeeded | Phase::Skipped),
                })
            }
            Depends::Not(inner) => Ok(!inner.evaluate(lookup)?),
            Depends::And(items) | Depends::Or(items) => {
                let values = items.iter().map(|d| d.evaluate(lookup)).collect::<Result<Vec<bool>>>()?;
                Ok(if matches!(self, Depends::And(_)) { !values.contains(&false) } else { values.contains(&true) })
            }
        }
    }
}

impl fmt::Display for Depends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, items: &[Depends], op: &str| {
            for (i, item) in items.iter().enumerate() {
                let sep = if i == 0 { "" } else { op };
                // `&&` binds tighter than `||`, so only an `Or` inside an `And` needs parentheses.
                match item {
                    Depends::Or(inner) if op == " && " && inner.len() > 1 => write!(f, "{sep}({item})")?,
                    _ => write!(f, "{sep}{item}")?,
                }
            }
            Ok(())
        };
        match self {
            Depends::Task { task, result: None } => write!(f, "{task}"),
            Depends::Task { task, result: Some(result) } => write!(f, "{task}.{result}"),
            Depends::Not(inner) => match **inner {
                Depends::Task { .. } | Depends::Not(_) => write!(f, "!{inner}"),
                _ => write!(f, "!({inner})"),
            },
            Depends::And(items) => join(f, items, " && "),
            Depends::Or(items) => join(f, items, " || "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Non-empty trimmed lines of a test table; `#` starts a comment line.
    fn rows(table: &str) -> impl Iterator<Item = &str> {
        table.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    /// Splits a `left => right` row.
    fn pair(row: &str) -> (&str, &str) {
        row.split_once(" => ").unwrap_or_else(|| panic!("bad test row {row:?}"))
    }

    fn vars(text: &str) -> Result<String> {
        substitute(text, &mut |name| match name {
            "a" => Resolved::Value("A".into()),
            "b" => Resolved::Value("{{a}}".into()),
            "later" => Resolved::Keep,
            _ => Resolved::Unknown,
        })
    }

    fn syntax_message(result: Result<impl fmt::Debug>) -> String {
        match result {
            Err(Error::Syntax { message, .. }) => message,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    fn depends(expr: &str) -> Result<bool> {
        use Phase::*;
        let map: HashMap<&str, TaskOutcome> = HashMap::from([
            ("ok", Succeeded.into()),
            ("bad", Failed.into()),
            ("err", Error.into()),
            ("skip", Skipped.into()),
            ("omit", Omitted.into()),
            ("loop-some", TaskOutcome { phase: Failed, children: vec![Failed, Succeeded] }),
            ("loop-fail", TaskOutcome { phase: Failed, children: vec![Failed, Error] }),
        ]);
        parse_depends(expr)?.evaluate(&|task| map.get(task).cloned())
    }

    #[test]
    fn substitution() {
        let table = r"
            plain => plain
            { a } and }} alone => { a } and }} alone
            x={{a}}, y={{  a  }} => x=A, y=A
            {{a}}{{a}} => AA
            é{{a}}ü => éAü
            run {{ later }} then {{a}} => run {{ later }} then A
            # a replacement is not substituted again
            {{b}} => {{a}}
        ";
        for (text, want) in rows(table).map(pair) {
            assert_eq!(vars(text).unwrap(), want, "{text}");
        }
        assert_eq!(vars("").unwrap(), "");
    }

    #[test]
    fn unknown_variable_names_the_tag() {
        let err = vars("echo {{ inputs.parameters.x }}").unwrap_err();
        let want = Error::UnknownVariable {
            name: "inputs.parameters.x".into(),
            text: "echo {{ inputs.parameters.x }}".into(),
        };
        assert_eq!(err, want);
        assert!(err.to_string().contains("`{{inputs.parameters.x}}`"), "{err}");
    }

    #[test]
    fn expression_tags_reach_the_resolver_with_their_equals_sign() {
        let mut seen = Vec::new();
        let out = substitute("a {{=1 + 2 }} b {{x}}", &mut |name| {
            seen.push(name.to_string());
            Resolved::Value("v".into())
        });
        assert_eq!(out.unwrap(), "a v b v");
        assert_eq!(seen, ["=1 + 2", "x"]);
        assert_eq!(variables("{{=x}}").unwrap(), ["=x"]);
        assert!(syntax_message(vars("a {{ = 1 + 2 }}")).contains("no space"));
    }

    #[test]
    fn unclosed_tag_reports_its_offset() {
        assert!(matches!(vars("ab {{x"), Err(Error::UnclosedTag { position: 3, .. })));
        assert!(matches!(vars("{{a}} {{b }"), Err(Error::UnclosedTag { position: 6, .. })));
        assert!(vars("ab {{x").unwrap_err().to_string().contains("offset 3"));
    }

    #[test]
    fn empty_tag_is_a_syntax_error() {
        assert!(syntax_message(vars("x {{  }}")).contains("empty tag"));
    }

    #[test]
    fn variables_lists_names_in_order() {
        assert_eq!(variables("{{b}} {{ a }} {{b}} {{x.y}}").unwrap(), ["b", "a", "b", "x.y"]);
        assert!(variables("none").unwrap().is_empty());
        assert!(matches!(variables("{{a"), Err(Error::UnclosedTag { .. })));
    }

    #[test]
    fn long_texts_are_cut_in_messages() {
        let text = format!("{} {{{{nope}}}}", "x".repeat(500));
        let message = vars(&text).unwrap_err().to_string();
        assert!(message.len() < 200 && message.contains('…'), "{message}");
    }

    #[test]
    fn when_truth_table() {
        let table = r#"
            # bare words are strings, including digit-led non-numbers
            heads == heads => true
            foo != bar => true
            heads == tails => false
            tails-1 == tails-1 => true
            v1.2 == 'v1.2' => true
            under_score==under_score => true
            1abc == 1abc => true
            1.2.3 == "1.2.3" => true
            # numbers compare numerically
            5 == 5.0 => true
            10 > 9 => true
            -1 < 0 => true
            2.5 >= 2.5 && 2.5 <= 2.5 => true
            .5 < 1 => true
            3 != 3 => false
            # a number equals a string with its canonical text
            "5" == 5 => true
            5 == '5' => true
            5 == "5.0" => false
            5 != x => true
            # strings compare lexicographically
            'abc' < 'abd' => true
            b > a => true
            'a b' == "a b" => true
            'it\'s' == "it's" => true
            '' == "" => true
            'true' == yes => false
            # booleans
            true => true
            false => false
            !false => true
            !!true => true
            true == true && true != false => true
            # precedence: ! > comparisons > && > ||
            true || false && false => true
            (true || false) && false => false
            !(a == b) => true
            a == a && b == b || c == d => true
            1 < 2 == true => true
            ( ( x == x ) ) => true
            # && and || short-circuit, as in govaluate
            false && (x > 1) => false
            true || (x > 1) => true
        "#;
        for (expr, want) in rows(table).map(pair) {
            let got = evaluate_when(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(got.to_string(), want, "{expr}");
        }
    }

    #[test]
    fn when_type_errors() {
        let table = r"
            !a == b => `!` needs booleans
            heads && true => `&&` needs booleans
            false || 5 => `||` needs booleans
            !heads => `!` needs booleans
            true && (x > 1) => cannot compare string
            heads => not a boolean
            5 => not a boolean
            'true' => not a boolean
            a < 5 => cannot compare string
            true < false => cannot compare boolean
            true == 'true' => cannot compare boolean
            yes != false => cannot compare string
            '5' > 4 => cannot compare string
        ";
        for (expr, want) in rows(table).map(pair) {
            let err = evaluate_when(expr).expect_err(expr);
            assert!(matches!(&err, Error::Type { expr: e, message } if e == expr && message.contains(want)), "{err:?}");
        }
        assert!(evaluate_when("heads && true").unwrap_err().to_string().contains("heads && true"));
    }

    #[test]
    fn regex_operators_match_unanchored() {
        let table = r#"
            abc =~ 'b' => true
            abc =~ '^b' => false
            abc !~ '^b' => true
            'v1.2.3' =~ "^v[0-9]+\.[0-9]+" => true
            heads =~ 'h.*s' && tails !~ 'x' => true
        "#;
        for (expr, want) in rows(table).map(pair) {
            assert_eq!(evaluate_when(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).to_string(), want, "{expr}");
        }
        assert!(syntax_message(evaluate_when("a =~ '('")).contains("invalid regular expression"));
        assert!(matches!(evaluate_when("5 =~ '5'"), Err(Error::Type { .. })));
    }

    #[test]
    fn when_syntax_errors() {
        let table = r"
            a == => unexpected end
            (a == b => missing `)`
            (a == b c => expected `)`
            a == b) => after a complete expression
            a == b c => unexpected `c` at offset 7
            a = b => did you mean `==`
            a & b => did you mean `&&`
            a | b => did you mean `||`
            'open => unterminated string
            a == @ => unexpected character `@`
            -foo == x => invalid token `-foo`
            == a => unexpected `==` at offset 0
            () => unexpected `)`
        ";
        for (expr, want) in rows(table).map(pair).chain([("", "empty expression"), ("  ", "empty expression")]) {
            let message = syntax_message(evaluate_when(expr));
            assert!(message.contains(want), "{expr}: {message}");
        }
    }

    #[test]
    fn deep_nesting_is_a_clear_error_not_a_stack_overflow() {
        let deep = 10_000;
        let parens = format!("{}true{}", "(".repeat(deep), ")".repeat(deep));
        let nots = format!("{}true", "!".repeat(deep));
        let chain = vec!["1 == 1"; deep].join(" && ");
        for when in [&parens, &nots, &chain] {
            let message = syntax_message(evaluate_when(when));
            assert!(message.contains("nested more than 100 levels deep"), "{}", &message[..message.len().min(300)]);
        }
        let deps = format!("{}a{}", "(".repeat(deep), ")".repeat(deep));
        for depends in [&deps, &format!("{}a", "!".repeat(deep))] {
            let message = syntax_message(parse_depends(depends));
            assert!(message.contains("nested more than 100 levels deep"), "{}", &message[..message.len().min(300)]);
        }
        // A long flat `depends` is no nesting, and the limit leaves room for real conditions.
        let many = (0..deep).map(|i| format!("t{i}")).collect::<Vec<_>>().join(" && ");
        assert_eq!(parse_depends(&many).unwrap().tasks().len(), deep);
        let fine = format!("{}true{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(evaluate_when(&format!("{fine} && !!{fine}")), Ok(true));
    }

    #[test]
    fn depends_parses_references() {
        let want = Depends::And(vec![
            Depends::Task { task: "task-a".into(), result: None },
            Depends::Task { task: "B".into(), result: Some(TaskResult::Failed) },
        ]);
        assert_eq!(parse_depends("task-a && B.Failed").unwrap(), want);
        for expr in ["gen_2", "123", "1a.Succeeded", "x-1.AllFailed"] {
            assert!(parse_depends(expr).is_ok(), "{expr}");
        }
    }

    #[test]
    fn depends_tasks_are_distinct_in_order() {
        let d = parse_depends("B.Failed || (A && !B) || C.Succeeded && A").unwrap();
        assert_eq!(d.tasks(), ["B", "A", "C"]);
    }

    #[test]
    fn depends_truth_table() {
        let table = r"
            # a bare name is Succeeded || Skipped || Daemoned
            ok => true
            skip => true
            bad => false
            err => false
            omit => false
            ok.Succeeded => true
            bad.Succeeded => false
            bad.Failed => true
            err.Failed => false
            err.Errored => true
            skip.Skipped => true
            omit.Omitted => true
            ok.Daemoned => false
            loop-some.AnySucceeded => true
            loop-fail.AnySucceeded => false
            loop-fail.AllFailed => true
            loop-some.AllFailed => false
            bad.AllFailed => false
            ok.AnySucceeded => false
            bad || ok && skip => true
            (bad || ok) && err => false
            !bad && (bad.Failed || err.Errored) => true
            !!ok => true
        ";
        for (expr, want) in rows(table).map(pair) {
            assert_eq!(depends(expr).unwrap().to_string(), want, "{expr}");
        }
    }

    #[test]
    fn unknown_results_list_the_allowed_ones() {
        for expr in ["A.succeeded", "A.Done", "A.Succeeded.x", "A."] {
            let message = syntax_message(parse_depends(expr));
            assert!(
                message.contains("unknown task result") && message.contains("AnySucceeded, AllFailed"),
                "{message}"
            );
        }
    }

    #[test]
    fn depends_syntax_errors() {
        let table = r"
            A && => unexpected end
            (A || B => missing `)`
            A B => unexpected `B`
            A == B => unexpected `==`
            'A' => unexpected `'A'`
            .Succeeded => invalid token
            A & B => did you mean `&&`
            -A => invalid token
        ";
        for (expr, want) in rows(table).map(pair).chain([("", "empty expression")]) {
            let message = syntax_message(parse_depends(expr));
            assert!(message.contains(want), "{expr}: {message}");
        }
        assert!(syntax_message(parse_depends("A =~ B")).contains("unexpected `=~`"));
    }

    #[test]
    fn unknown_task_is_an_error_even_when_short_circuitable() {
        assert_eq!(depends("nope").unwrap_err(), Error::UnknownTask { task: "nope".into() });
        assert!(matches!(depends("ok || nope"), Err(Error::UnknownTask { .. })));
        assert!(depends("nope.Failed").unwrap_err().to_string().contains("`nope`"));
    }

    #[test]
    fn legacy_dependencies_mean_and() {
        let deps = from_dependencies(&["ok".into(), "skip".into()]);
        assert_eq!(deps, parse_depends("ok && skip").unwrap());
        assert_eq!(deps.to_string(), "ok && skip");
        assert_eq!(from_dependencies(&["A".into()]), parse_depends("A").unwrap());
        let none = from_dependencies(&[]);
        assert!(none.evaluate(&|_| None).unwrap());
        assert_eq!(none.to_string(), "");
    }

    #[test]
    fn display_normalizes_and_round_trips() {
        let table = r"
            !( A||B ) && C.Failed => !(A || B) && C.Failed
            (A && B) || C => A && B || C
            A && (B || C) => A && (B || C)
            !!A => !!A
            !(A && B.Errored) => !(A && B.Errored)
            ((A)) => A
        ";
        for (expr, want) in rows(table).map(pair) {
            assert_eq!(parse_depends(expr).unwrap().to_string(), want);
            assert_eq!(parse_depends(want).unwrap().to_string(), want);
        }
    }
}
