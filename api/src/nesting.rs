//! How deep a GraphQL document nests, measured on its text before anything
//! parses it.
//!
//! The parser and the steps after it (building the syntax tree, validating,
//! converting values, dropping them) recurse once per level of a list, an
//! input object or a selection set, on the stack of the worker thread that
//! serves the request. A document nested a thousand levels deep fits in a few
//! kilobytes and overflows that stack, which aborts the whole process rather
//! than failing the one request. Selection sets are bounded inside the parser,
//! values are not; so every path that takes a query text calls [`check`]
//! first and refuses a document nested deeper than [`MAX_NESTING`].
//!
//! The scan counts `[`, `{` and `(` against `]`, `}` and `)` in one counter,
//! skipping string literals, block strings and `#` comments the way the
//! GraphQL grammar delimits them. Where it and the parser could disagree
//! about where a string ends (a string the parser will refuse), the scan ends
//! it no later than the parser does, so it never skips a bracket the parser
//! would read as nesting.

/// The deepest a query document may nest: lists, input objects, selection
/// sets and argument lists inside one another, all counted together. Real
/// queries stay far below it (the schema refuses selections deeper than
/// `--max-query-depth`, and the parser's own bound on selection sets is the
/// same 64); the recursion that overflows a worker's stack starts some
/// hundreds of levels deeper.
pub const MAX_NESTING: usize = 64;

/// `extensions.code` of a document refused by [`check`].
pub const QUERY_TOO_DEEP: &str = "QUERY_TOO_DEEP";

/// A document nested deeper than [`MAX_NESTING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the query document nests more than {MAX_NESTING} levels deep (lists, input objects, \
     selection sets and arguments inside one another); at most {MAX_NESTING} are accepted"
)]
pub struct TooDeep;

/// Refuses a document nested deeper than [`MAX_NESTING`]. Cheap: one pass
/// over the text that stops at the first level too deep.
pub fn check(document: &str) -> Result<(), TooDeep> {
    if deepest(document, MAX_NESTING) > MAX_NESTING {
        Err(TooDeep)
    } else {
        Ok(())
    }
}

/// The deepest bracket nesting of `document` outside strings and comments,
/// or the first depth past `stop_past` (the scan stops there).
fn deepest(document: &str, stop_past: usize) -> usize {
    // Brackets, quotes, backslashes, `#` and line terminators are ASCII, and
    // no byte of a multi-byte UTF-8 character is ASCII, so bytes will do.
    let text = document.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b'[' | b'{' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > stop_past {
                    return deepest;
                }
                at += 1;
            }
            // A closing bracket too many is a syntax error the parser reports
            // before it goes deeper; it must not let later brackets go uncounted.
            b']' | b'}' | b')' => {
                depth = depth.saturating_sub(1);
                at += 1;
            }
            b'#' => at = past_comment(text, at + 1),
            b'"' if text[at..].starts_with(BLOCK_QUOTE) => at = past_block_string(text, at),
            b'"' => at = past_string(text, at + 1),
            _ => at += 1,
        }
    }
    deepest
}

const BLOCK_QUOTE: &[u8] = b"\"\"\"";
const ESCAPED_BLOCK_QUOTE: &[u8] = b"\\\"\"\"";

fn is_line_terminator(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// Where a comment begun before `from` ends: at its line terminator.
fn past_comment(text: &[u8], from: usize) -> usize {
    text[from..]
        .iter()
        .position(|&b| is_line_terminator(b))
        .map_or(text.len(), |end| from + end)
}

/// Where the string whose content begins at `from` ends: past its closing
/// quote. A string may not hold a line terminator, and an escape is a
/// backslash and one character; a string broken either way is one the parser
/// refuses, so the scan resumes counting at the line terminator.
fn past_string(text: &[u8], from: usize) -> usize {
    let mut at = from;
    while at < text.len() {
        match text[at] {
            b'"' => return at + 1,
            b'\\' if text.get(at + 1).is_some_and(|&b| !is_line_terminator(b)) => at += 2,
            byte if is_line_terminator(byte) => return at,
            _ => at += 1,
        }
    }
    text.len()
}

/// Where the block string opening at `open` ends: past the first `"""` not
/// escaped as `\"""`. Without one, the grammar reads the opening as an empty
/// string `""` and a plain string begun by the third quote, so the scan does
/// the same.
fn past_block_string(text: &[u8], open: usize) -> usize {
    let mut at = open + BLOCK_QUOTE.len();
    while at < text.len() {
        if text[at..].starts_with(ESCAPED_BLOCK_QUOTE) {
            at += ESCAPED_BLOCK_QUOTE.len();
        } else if text[at..].starts_with(BLOCK_QUOTE) {
            return at + BLOCK_QUOTE.len();
        } else {
            at += 1;
        }
    }
    open + 2
}

#[cfg(test)]
mod tests;
