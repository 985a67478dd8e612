//! A light scan of an expression's text, outside its string literals and
//! comments. The `expr-lang` crate keeps its syntax tree private, so what
//! Ferry must know before evaluating (which variables an expression reads,
//! how deeply it nests) and the one rewrite it needs (`sprig.f(` calls) are
//! found here, on the text.

/// What a stretch of the expression is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// Code: identifiers, operators, numbers.
    Code,
    /// A string literal or a comment, quotes and markers included.
    Literal,
}

/// Splits `text` into code and literals. An unterminated literal runs to the
/// end (the parser reports it).
fn pieces(text: &str) -> Vec<(Piece, usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut code_start) = (0, 0);
    while i < bytes.len() {
        let end = match bytes[i] {
            b'"' | b'\'' => Some(string_end(bytes, i)),
            b'`' => Some(bytes[i + 1..].iter().position(|&b| b == b'`').map_or(bytes.len(), |p| i + p + 2)),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                Some(bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p))
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                Some(text[i + 2..].find("*/").map_or(bytes.len(), |p| i + 2 + p + 2))
            }
            _ => None,
        };
        match end {
            Some(end) => {
                if code_start < i {
                    out.push((Piece::Code, code_start, i));
                }
                out.push((Piece::Literal, i, end));
                i = end;
                code_start = end;
            }
            None => i += 1,
        }
    }
    if code_start < bytes.len() {
        out.push((Piece::Code, code_start, bytes.len()));
    }
    out
}

/// The end (exclusive) of the quoted string starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b == b'#'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Rewrites `sprig.name(` into `sprig_name(`, same length, so the parser's
/// offsets still point into the text as written. `expr-lang` dispatches
/// `value.name(...)` only to its own date methods, while Argo reaches sprig
/// through a map of functions; Ferry registers each as `sprig_<name>`.
pub(super) fn rewrite_sprig(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (piece, start, end) in pieces(text) {
        let part = &text[start..end];
        if piece == Piece::Literal {
            out.push_str(part);
            continue;
        }
        let bytes = part.as_bytes();
        let mut done = 0;
        let mut search = 0;
        while let Some(found) = part[search..].find("sprig.") {
            let at = search + found;
            search = at + 6;
            let before = at.checked_sub(1).map(|b| bytes[b]);
            // A root identifier only: not `x.sprig.`, not `mysprig.`.
            if before.is_some_and(|b| is_ident(b) || b == b'.' || b == b'#' || b == b'$') {
                continue;
            }
            out.push_str(&part[done..at]);
            out.push_str("sprig_");
            done = at + 6;
        }
        out.push_str(&part[done..]);
    }
    out
}

/// The function a map literal becomes (see [`rewrite_maps`]).
pub(super) const MAP_FUNCTION: &str = "ferry_map";

/// Rewrites map literals, `{k: v, "k2": v2}`, into calls of
/// [`MAP_FUNCTION`], `ferry_map("k", v, "k2", v2)`. The crate builds a map
/// literal only from constants and panics on any other value (`{avg:
/// sprig.add(a, b)}`), which Argo's expressions use; a call takes any
/// expression. A `{` opens a map literal when a key and `:` follow it (a
/// closure such as `{# * 2}` or `{x ? a : b}` does not start that way);
/// keys are read after the `{` and after each top-level `,` of the literal.
pub(super) fn rewrite_maps(text: &str) -> String {
    let code = Code::new(text);
    let bytes = text.as_bytes();
    let (literal_end, key_at) = (&code.literal_end, |from| code.key_at(from));
    let mut out = String::with_capacity(text.len() + 16);
    // Open brackets; `m` for a `{` that opened a map literal.
    let mut open: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if literal_end[i] > i {
            out.push_str(&text[i..literal_end[i]]);
            i = literal_end[i];
            continue;
        }
        let key = match bytes[i] {
            b'{' => match key_at(i + 1) {
                Some(key) => {
                    out.push_str(MAP_FUNCTION);
                    out.push('(');
                    open.push(b'm');
                    Some(key)
                }
                None => {
                    open.push(b'{');
                    out.push('{');
                    None
                }
            },
            b'(' | b'[' => {
                open.push(bytes[i]);
                out.push(bytes[i] as char);
                None
            }
            b'}' => {
                out.push(if open.pop() == Some(b'm') { ')' } else { '}' });
                None
            }
            b')' | b']' => {
                open.pop();
                out.push(bytes[i] as char);
                None
            }
            b',' if open.last() == Some(&b'm') => {
                out.push(',');
                key_at(i + 1)
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8();
                continue;
            }
        };
        i += 1;
        if let Some((key, value)) = key {
            out.push_str(&key);
            i = value;
        }
    }
    out
}

/// A text with where each of its literals (strings, comments) ends.
struct Code<'a> {
    text: &'a str,
    /// At the first byte of a literal, where it ends; 0 elsewhere.
    literal_end: Vec<usize>,
}

impl<'a> Code<'a> {
    fn new(text: &'a str) -> Code<'a> {
        let mut literal_end = vec![0usize; text.len()];
        for (piece, start, end) in pieces(text) {
            if piece == Piece::Literal {
                literal_end[start] = end;
            }
        }
        Code { text, literal_end }
    }

    fn skip_space(&self, mut i: usize) -> usize {
        let bytes = self.text.as_bytes();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() && self.literal_end[i] == 0 {
            i += 1;
        }
        i
    }

    /// From `from`, a map key and its `:`: what to write for them (the key
    /// quoted, a `,` for the `:`), and where the value starts.
    fn key_at(&self, from: usize) -> Option<(String, usize)> {
        let (text, bytes, literal_end) = (self.text, self.text.as_bytes(), &self.literal_end);
        let i = self.skip_space(from);
        let (key, end) = if i < bytes.len() && literal_end[i] > i && matches!(bytes[i], b'"' | b'\'') {
            (text[i..literal_end[i]].to_string(), literal_end[i])
        } else if i < bytes.len() && literal_end[i] == 0 && is_ident_start(bytes[i]) && !matches!(bytes[i], b'#' | b'$')
        {
            let end = (i + 1..bytes.len()).find(|&j| !is_ident(bytes[j])).unwrap_or(bytes.len());
            (format!("\"{}\"", &text[i..end]), end)
        } else {
            return None;
        };
        let colon = self.skip_space(end);
        (bytes.get(colon) == Some(&b':') && bytes.get(colon + 1) != Some(&b':') && literal_end[colon] == 0)
            .then(|| (format!("{}{key},", &text[from..i]), colon + 1))
    }
}

/// How deeply brackets nest: `(`, `[` and `{` each open a level.
pub(super) fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for (piece, start, end) in pieces(text) {
        if piece == Piece::Literal {
            continue;
        }
        for b in text[start..end].bytes() {
            match b {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    deepest
}

/// Words of the language that are not variables.
const KEYWORDS: [&str; 14] = [
    "true",
    "false",
    "nil",
    "and",
    "or",
    "not",
    "in",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "let",
    "if",
    "else",
];

/// The variables an expression reads, as Argo names them: a root identifier
/// followed by its `.name` and `['name']` members, joined with dots
/// (`steps['a-b'].outputs.result` → `steps.a-b.outputs.result`). Function
/// names, keywords, `#` and the `sprig` map of functions are left out. Each path once, in order.
pub fn references(text: &str) -> Vec<String> {
    let spans = pieces(text);
    let mut out: Vec<String> = Vec::new();
    for (k, &(piece, start, end)) in spans.iter().enumerate() {
        if piece == Piece::Literal {
            continue;
        }
        let bytes = text.as_bytes();
        let mut i = start;
        while i < end {
            if !is_ident_start(bytes[i]) || (i > start && is_ident(bytes[i - 1])) {
                i += 1;
                continue;
            }
            let word_end = i + 1 + bytes[i + 1..end].iter().position(|&b| !is_ident(b)).unwrap_or(end - i - 1);
            let word = &text[i..word_end];
            let member = text[start..i].trim_end().ends_with('.');
            let call = text[word_end..end].trim_start().starts_with('(');
            let function_map = word == "sprig";
            if !member && !call && !function_map && !KEYWORDS.contains(&word) && !word.starts_with(['#', '$']) {
                let path = member_path(text, &spans, k, word_end, word);
                if !out.contains(&path) {
                    out.push(path);
                }
            }
            i = word_end;
        }
    }
    out
}

/// `root` and the members that follow it at `from` in the code piece `k`:
/// `.name`, and `['name']` where the string literal is the next piece.
fn member_path(text: &str, spans: &[(Piece, usize, usize)], mut k: usize, mut from: usize, root: &str) -> String {
    let mut path = root.to_string();
    loop {
        let (_, _, end) = spans[k];
        let rest = &text[from..end];
        if let Some(after) = rest.strip_prefix('.') {
            let len = after.bytes().position(|b| !is_ident(b)).unwrap_or(after.len());
            if len == 0 || after[len..].trim_start().starts_with('(') {
                return path;
            }
            path = format!("{path}.{}", &after[..len]);
            from += 1 + len;
        } else if rest.trim_end() == "[" && from + rest.len() == end {
            // `[` ends this piece, so a literal follows: `['name']`.
            let Some(&(Piece::Literal, lit_start, lit_end)) = spans.get(k + 1) else { return path };
            let Some(&(Piece::Code, next_start, next_end)) = spans.get(k + 2) else { return path };
            let literal = &text[lit_start..lit_end];
            let closes = text[next_start..next_end].trim_start().starts_with(']');
            if !closes || literal.len() < 2 || !matches!(literal.as_bytes()[0], b'\'' | b'"') {
                return path;
            }
            path = format!("{path}.{}", &literal[1..literal.len() - 1]);
            k += 2;
            from = next_start + text[next_start..next_end].find(']').map_or(0, |p| p + 1);
        } else {
            return path;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprig_calls_are_rewritten_outside_strings_only() {
        let text = r#"sprig.trim(x) + "sprig.upper(" + a.sprig.b + sprig.upper('sprig.x')"#;
        let want = r#"sprig_trim(x) + "sprig.upper(" + a.sprig.b + sprig_upper('sprig.x')"#;
        assert_eq!(rewrite_sprig(text), want);
        assert_eq!(rewrite_sprig(text).len(), text.len());
    }

    #[test]
    fn references_follow_members_and_string_indexes() {
        let text = r#"asInt(inputs.parameters.n) + len(steps['gen-1'].outputs.result) > 0 ? item.name : "tasks.x" // workflow.name"#;
        assert_eq!(references(text), ["inputs.parameters.n", "steps.gen-1.outputs.result", "item.name"]);
        assert_eq!(references("sprig.trim(x) == y && true"), ["x", "y"]);
        assert_eq!(references("map([1, 2], {# * 2})"), Vec::<String>::new());
        assert_eq!(references(r#"workflow.parameters["a"]"#), ["workflow.parameters.a"]);
        assert_eq!(references("steps[x]"), ["steps", "x"]);
        assert_eq!(references("a.b.c(1)"), ["a.b"]);
    }

    #[test]
    fn map_literals_become_calls_and_closures_stay() {
        let text = r#"toJson({avg: sprig.add(#[0], 1) / 5, "m-x": {a: x ? 1 : 2}, 'q': "{b: 1}"})"#;
        let want =
            r#"toJson(ferry_map("avg", sprig.add(#[0], 1) / 5, "m-x", ferry_map("a", x ? 1 : 2), 'q', "{b: 1}"))"#;
        assert_eq!(rewrite_maps(text), want);
        for unchanged in ["map([1, 2], {# * 2})", "filter(xs, {x ? a : b})", "{}", "a ? b : c", "m::x"] {
            assert_eq!(rewrite_maps(unchanged), unchanged);
        }
    }

    #[test]
    fn nesting_counts_brackets_outside_literals() {
        assert_eq!(nesting("((a)) + [1, (2)] + '((((('"), 2);
        assert_eq!(nesting(&"(".repeat(500)), 500);
    }
}
