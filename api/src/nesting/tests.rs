use async_graphql::parser::parse_query;
use async_graphql::parser::types::{
    BaseType, Directive, ExecutableDocument, Field, Selection, SelectionSet, Type,
};
use async_graphql::parser::Positioned;
use async_graphql::Value;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;

fn depth(document: &str) -> usize {
    deepest(document, usize::MAX)
}

/// Lists, input objects, selection sets and argument lists all count, in one
/// counter, however they are mixed.
#[test]
fn every_kind_of_bracket_counts_and_they_count_together() {
    assert_eq!(depth(""), 0);
    assert_eq!(depth("{ a }"), 1);
    assert_eq!(depth("{ a(x: [1, [2]]) { b } }"), 4);
    assert_eq!(depth("{ a(x: {y: {z: 1}}) }"), 4);
    assert_eq!(depth("query($v: [[Int]] = [[1]]) { a }"), 3);
    assert_eq!(depth("{ a { b { c } } } { d }"), 3);
}

/// Brackets inside a string, a block string or a comment are text, not
/// nesting.
#[test]
fn brackets_in_strings_block_strings_and_comments_do_not_count() {
    assert_eq!(depth(r#"{ a(x: "[[[{{{(((") }"#), 2);
    assert_eq!(depth("{ a(x: \"\"\"[[[\n{{{\n(((\"\"\") }"), 2);
    assert_eq!(depth("{ a # [[[{{{(((\n}"), 1);
    assert_eq!(depth("{ a #[[[\r[b] }"), 2);
    assert_eq!(depth(r##"{ a(x: "#[[[") }"##), 2);
    assert_eq!(depth("{ a(x: \"\"\"#\"\"\") [b] }"), 2);
}

/// An escaped quote does not end a string, nor `\"""` a block string; in a
/// string an escaped backslash before a quote does not escape it, while in a
/// block string a backslash escapes nothing but `"""`.
#[test]
fn escaped_quotes_do_not_end_a_string() {
    for (document, expected) in [
        (r#"{ a(x: "\"[[[\"") }"#, 2),
        (r#"{ a(x: "\\", y: [1]) }"#, 3),
        (r#"{ a(x: """\"""[[[""") }"#, 2),
        (r#"{ a(x: """\\"""[[[""") }"#, 2),
    ] {
        assert!(parse_query(document).is_ok(), "{document}");
        assert_eq!(depth(document), expected, "{document}");
    }
}

/// A string cannot hold a line terminator: a string broken by one (which the
/// parser refuses) ends there for the scan, and what follows counts.
#[test]
fn a_string_broken_by_a_line_end_ends_there() {
    assert_eq!(depth("\"abc\n[[[["), 4);
    assert_eq!(depth("\"abc\r[[[["), 4);
    assert_eq!(depth("\"abc\\\n[[[["), 4);
    assert_eq!(depth("\"[[[["), 0);
}

/// A `"""` never closed is, to the grammar, an empty string and a plain
/// string begun by the third quote; the scan reads it the same, so a list
/// after that plain string counts. Skipping to the end of the text instead
/// would hide nesting the parser builds.
#[test]
fn an_unclosed_block_string_is_read_as_the_grammar_reads_it() {
    let document = format!(
        "{{ a(x: [ \"\"\"[[\" {}1{} ]) }}",
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(parse_query(&document).is_ok(), "the parser accepts it");
    assert_eq!(depth(&document), 103);
    assert_eq!(check(&document), Err(TooDeep));
}

/// A closing bracket too many does not let later nesting go uncounted.
#[test]
fn stray_closing_brackets_do_not_hide_later_nesting() {
    assert_eq!(depth("]]]]]]}}}))) [[["), 3);
    assert_eq!(depth("[[]]]]]][[["), 3);
}

/// A document nested exactly [`MAX_NESTING`] deep passes, one level more is
/// refused with a message naming the bound.
#[test]
fn a_document_may_nest_exactly_to_the_bound() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(check(&nested(MAX_NESTING)), Ok(()));
    assert_eq!(check(&nested(MAX_NESTING + 1)), Err(TooDeep));
    assert!(TooDeep.to_string().contains(&MAX_NESTING.to_string()));
}

/// The scan stops at the first level past the bound it is given.
#[test]
fn the_scan_stops_at_the_first_level_too_deep() {
    let hostile = "{a: ".repeat(100_000);
    assert_eq!(deepest(&hostile, MAX_NESTING), MAX_NESTING + 1);
    assert_eq!(check(&hostile), Err(TooDeep));
}

/// How deeply the parsed document nests, counted as the scan counts:
/// each selection set, argument list, variable list, list and input object
/// is a level.
fn parsed_depth(document: &ExecutableDocument) -> usize {
    let operations = document.operations.iter().map(|(_, operation)| {
        let operation = &operation.node;
        let variables = operation
            .variable_definitions
            .iter()
            .map(|variable| {
                let variable = &variable.node;
                let default = variable
                    .default_value
                    .as_ref()
                    .map_or(0, |value| value_depth(&value.node));
                1 + type_depth(&variable.var_type.node)
                    .max(default)
                    .max(directives_depth(&variable.directives))
            })
            .max()
            .unwrap_or(0);
        variables
            .max(directives_depth(&operation.directives))
            .max(selection_set_depth(&operation.selection_set.node))
    });
    let fragments = document.fragments.values().map(|fragment| {
        directives_depth(&fragment.node.directives)
            .max(selection_set_depth(&fragment.node.selection_set.node))
    });
    operations.chain(fragments).max().unwrap_or(0)
}

fn selection_set_depth(set: &SelectionSet) -> usize {
    if set.items.is_empty() {
        return 0;
    }
    let deepest_item = set.items.iter().map(|item| match &item.node {
        Selection::Field(field) => {
            let field = &field.node;
            arguments_depth(field_arguments(field))
                .max(directives_depth(&field.directives))
                .max(selection_set_depth(&field.selection_set.node))
        }
        Selection::FragmentSpread(spread) => directives_depth(&spread.node.directives),
        Selection::InlineFragment(inline) => directives_depth(&inline.node.directives)
            .max(selection_set_depth(&inline.node.selection_set.node)),
    });
    1 + deepest_item.max().unwrap_or(0)
}

/// Argument values with each variable as `null`: a variable does not nest.
fn field_arguments(field: &Field) -> Vec<Value> {
    let constant = |_| Ok::<_, ()>(Value::Null);
    field
        .arguments
        .iter()
        .filter_map(|(_, value)| value.node.clone().into_const_with(constant).ok())
        .collect()
}

fn directive_arguments(directive: &Directive) -> Vec<Value> {
    let constant = |_| Ok::<_, ()>(Value::Null);
    directive
        .arguments
        .iter()
        .filter_map(|(_, value)| value.node.clone().into_const_with(constant).ok())
        .collect()
}

fn arguments_depth(arguments: Vec<Value>) -> usize {
    arguments
        .iter()
        .map(|value| 1 + value_depth(value))
        .max()
        .unwrap_or(0)
}

fn directives_depth(directives: &[Positioned<Directive>]) -> usize {
    directives
        .iter()
        .map(|directive| arguments_depth(directive_arguments(&directive.node)))
        .max()
        .unwrap_or(0)
}

fn value_depth(value: &Value) -> usize {
    match value {
        Value::List(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn type_depth(ty: &Type) -> usize {
    match &ty.base {
        BaseType::Named(_) => 0,
        BaseType::List(inner) => 1 + type_depth(inner),
    }
}

/// A string literal whose text is full of brackets, quotes, escapes and `#`.
fn string_literal() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "a", "[", "]", "{", "}", "(", ")", "#", "é", r#"\""#, r"\\", r"\n", r"\u0041", " ",
    ];
    vec(select(PIECES), 0..12).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// A block string with brackets, single quotes, escaped `"""`, line breaks.
fn block_string() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "a", "[", "]", "{", "}", "(", ")", "#", "é", "\"b", r#"\""""#, "\n", "\r\n", r"\n", " ",
    ];
    vec(select(PIECES), 0..12).prop_map(|pieces| format!("\"\"\"{}\"\"\"", pieces.concat()))
}

/// A comment full of brackets, ended by a line break.
fn comment() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &["[", "]", "{", "}", "(", ")", "\"", "\"\"\"", "#", "x"];
    vec(select(PIECES), 0..8).prop_map(|pieces| format!(" # {}\n", pieces.concat()))
}

/// A GraphQL input value and how deeply it nests.
fn value() -> impl Strategy<Value = (String, usize)> {
    let leaf = prop_oneof![
        Just(("1".to_string(), 0)),
        Just(("null".to_string(), 0)),
        string_literal().prop_map(|s| (s, 0)),
        block_string().prop_map(|s| (s, 0)),
    ];
    leaf.prop_recursive(24, 256, 4, |inner| {
        let item = move || (inner.clone(), prop::option::of(comment()));
        prop_oneof![
            vec(item(), 0..4).prop_map(|items| {
                let depth = 1 + items.iter().map(|((_, d), _)| *d).max().unwrap_or(0);
                let text: String = items
                    .iter()
                    .map(|((v, _), c)| format!("{v}{} ", c.as_deref().unwrap_or("")))
                    .collect();
                (format!("[{text}]"), depth)
            }),
            vec(item(), 0..4).prop_map(|fields| {
                let depth = 1 + fields.iter().map(|((_, d), _)| *d).max().unwrap_or(0);
                let text: String = fields
                    .iter()
                    .enumerate()
                    .map(|(i, ((v, _), c))| format!("k{i}: {v}{} ", c.as_deref().unwrap_or("")))
                    .collect();
                (format!("{{{text}}}"), depth)
            }),
        ]
    })
}

/// Tokens that a string's delimiters could be confused with, and brackets:
/// strung together at random, some sequences parse and many of those read
/// quotes in ways a careless scan would not (an unclosed `"""`, an escaped
/// quote, a comment holding a quote).
fn token_soup() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "\"x\"",
        "\"\"",
        "\"\"\"",
        "\"\"\"x\"\"\"",
        r#""\"""#,
        r#""\\""#,
        r#""""\""""""#,
        "\"[[\"",
        "\"\"\"[\"\"\"",
        "# \"[\n",
        "#\n",
        "\n",
        " ",
        "[",
        "]",
        "[",
        "]",
        "{k: ",
        "}",
        "1",
        "x",
        "\\",
        "\"",
    ];
    let separator = prop_oneof![Just(""), Just(" ")];
    vec((select(TOKENS), separator), 1..24).prop_map(|tokens| {
        tokens
            .iter()
            .flat_map(|(token, separator)| [*token, *separator])
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// On documents the parser accepts, full of strings, block strings and
    /// comments holding brackets and quotes, the scan counts exactly the
    /// nesting the parser builds.
    #[test]
    fn the_scan_counts_exactly_the_nesting_the_parser_builds((value, value_depth) in value()) {
        let document = format!("{{ f(a: {value}) }}");
        let parsed = parse_query(&document).map_err(|e| TestCaseError::fail(format!("{e}: {document}")))?;
        prop_assert_eq!(parsed_depth(&parsed), 2 + value_depth);
        prop_assert_eq!(depth(&document), 2 + value_depth, "{}", document);
    }

    /// Whatever string delimiters, escapes, comments and brackets a
    /// document strings together, if the parser accepts it, the scan never
    /// counts less nesting than the parser built.
    #[test]
    fn the_scan_never_counts_less_nesting_than_the_parser_builds(soup in token_soup()) {
        let document = format!("{{ f(a: [{soup}]) }}");
        if let Ok(parsed) = parse_query(&document) {
            prop_assert!(depth(&document) >= parsed_depth(&parsed), "{}", document);
        }
    }
}
