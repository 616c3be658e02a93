//! What a field costs in the query complexity `--max-query-complexity`
//! bounds. async-graphql counts each selected field once; a list counts its
//! selection once per item it may hold, so a page of 500 tickets costs 500
//! times its selection and nesting `relatedTickets` multiplies.

/// Related tickets a ticket is assumed to hold when a query is costed: the
/// typical ticket has a few, the cap is `--max-related-per-ticket`; nesting
/// three levels deep is refused under the default limit.
pub const RELATED_ESTIMATE: usize = 20;

/// A page of `first` items (50 when not given; a negative value is refused
/// by the resolver and costs nothing more here).
pub fn page(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(50)).unwrap_or(0).max(1);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// `relatedTickets`: one stream read per related ticket, each with its
/// selection.
pub fn related(child_complexity: usize) -> usize {
    RELATED_ESTIMATE
        .saturating_mul(child_complexity.saturating_add(1))
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full page of tickets with twenty fields fits the default limit;
    /// three levels of related tickets do not, whatever they select.
    #[test]
    fn pages_count_their_items_and_related_tickets_multiply() {
        const DEFAULT_LIMIT: usize = 10_000;
        assert!(page(Some(500), 19) <= DEFAULT_LIMIT);
        assert!(page(Some(500), 21) > DEFAULT_LIMIT);
        assert_eq!(page(None, 10), 501);
        let two_deep = related(related(1));
        assert!(two_deep < DEFAULT_LIMIT, "{two_deep}");
        assert!(related(related(related(1))) > DEFAULT_LIMIT);
    }
}
