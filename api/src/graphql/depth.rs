//! The selection-depth limit (`--max-query-depth`), applied to the fields of
//! the contract and not to introspection.
//!
//! async-graphql's own `limit_depth` counts every field, `__schema` and
//! `__type` included, and GraphiQL's introspection query (the `ofType` chain of
//! its `TypeRef` fragment) nests about 15 deep: under the default limit the
//! page could not load the schema. So the schema's own limit is a ceiling of
//! [`INTROSPECTION_DEPTH`], and this extension holds every operation's other
//! fields to the configured depth right after parsing, before validation.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, ServerError, ServerResult, Variables};

/// The depth limit of the whole document, introspection included: enough
/// for GraphiQL's introspection query.
pub const INTROSPECTION_DEPTH: usize = 32;

/// Fragment spreads followed inside each other before a document counts as
/// too deep; no real query comes near it, and it bounds this module's
/// recursion whatever the document.
const MAX_SPREAD_NESTING: usize = 64;

/// Refuses an operation whose fields, introspection aside, nest deeper than
/// `max`.
pub struct SelectionDepth {
    pub max: usize,
}

impl ExtensionFactory for SelectionDepth {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SelectionDepthCheck { max: self.max })
    }
}

struct SelectionDepthCheck {
    max: usize,
}

#[async_trait::async_trait]
impl Extension for SelectionDepthCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if depth(&document) > self.max {
            return Err(ServerError::new(
                format!(
                    "Query is nested too deep: fields may nest at most {} levels",
                    self.max
                ),
                None,
            ));
        }
        Ok(document)
    }
}

/// The deepest nesting of fields in any operation of `document`, not counting
/// `__schema` and `__type` and what they select. A document whose fragment
/// spreads nest deeper than [`MAX_SPREAD_NESTING`] counts as infinitely deep.
pub fn depth(document: &ExecutableDocument) -> usize {
    let mut walk = Walk {
        document,
        fragments: HashMap::new(),
        spreads: 0,
    };
    document
        .operations
        .iter()
        .map(|(_, operation)| walk.set(&operation.node.selection_set.node))
        .max()
        .unwrap_or(0)
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    /// Each fragment's depth, computed once: a document may spread the same
    /// fragment many times.
    fragments: HashMap<&'a Name, usize>,
    /// Fragment spreads being followed now.
    spreads: usize,
}

impl<'a> Walk<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> usize {
        let mut deepest = 0;
        for selection in &set.items {
            let depth = match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        0
                    } else {
                        self.set(&field.node.selection_set.node).saturating_add(1)
                    }
                }
                Selection::InlineFragment(inline) => self.set(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            deepest = deepest.max(depth);
        }
        deepest
    }

    fn fragment(&mut self, name: &'a Name) -> usize {
        if let Some(depth) = self.fragments.get(name) {
            return *depth;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            // Unknown fragments are validation's to report.
            return 0;
        };
        if self.spreads >= MAX_SPREAD_NESTING {
            return usize::MAX;
        }
        // A cycle meets its own fragment again: 0 for now, and validation
        // refuses the document anyway.
        self.fragments.insert(name, 0);
        self.spreads += 1;
        let depth = self.set(&fragment.node.selection_set.node);
        self.spreads -= 1;
        self.fragments.insert(name, depth);
        depth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_of(query: &str) -> usize {
        depth(&async_graphql::parser::parse_query(query).expect("parses"))
    }

    /// Fields count one level each, through inline fragments and fragment
    /// spreads alike; the deepest branch decides.
    #[test]
    fn depth_is_the_deepest_branch_of_fields() {
        assert_eq!(depth_of("{ me { id } }"), 2);
        assert_eq!(depth_of("{ a b { c { d } } e }"), 3);
        assert_eq!(depth_of("{ a { ... on T { b { c } } } }"), 3);
        assert_eq!(depth_of("{ a { ...F } } fragment F on T { b { c } }"), 3);
    }

    /// Introspection adds nothing, however deep its `ofType` chain goes.
    #[test]
    fn introspection_does_not_count() {
        let deep_type_ref = "{ __schema { types { fields { type { ofType { ofType { ofType { \
            ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }";
        assert_eq!(depth_of(deep_type_ref), 0);
        assert_eq!(
            depth_of("{ __type(name: \"Query\") { name } me { id } }"),
            2
        );
        assert_eq!(depth_of("{ __typename }"), 1);
    }

    /// A fragment spread many times is walked once; spreads nested beyond the
    /// bound make the document too deep instead of recursing on.
    #[test]
    fn fragments_are_walked_once_and_their_nesting_is_bounded() {
        let mut chain = String::from("{ ...F0 }");
        for i in 0..200 {
            chain.push_str(&format!(" fragment F{i} on Query {{ a ...F{} }}", i + 1));
        }
        chain.push_str(" fragment F200 on Query { a }");
        assert_eq!(depth_of(&chain), usize::MAX);
        let fan =
            "{ ...A ...A ...A } fragment A on Query { ...B ...B } fragment B on Query { x { y } }";
        assert_eq!(depth_of(fan), 2);
        assert_eq!(
            depth_of("{ ...A } fragment A on Query { b { ...A } }"),
            1,
            "a cycle ends; validation refuses it"
        );
    }
}
