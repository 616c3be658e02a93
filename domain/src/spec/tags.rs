//! Tags: normalised, limited in length, charset and number.

use super::*;

fn add(tag: &str) -> Command {
    Command::AddTag { tag: tag.into() }
}

fn tagged(tag: &str) -> TicketEvent {
    then(&agent(), TicketChange::TagAdded { tag: tag.into() })
}

#[test]
fn it_should_normalise_a_tag_to_lower_case_with_dashes() {
    given(vec![created()])
        .when(add("  Needs \t Customer  Reply "))
        .then_expect(vec![TicketChange::TagAdded {
            tag: "needs-customer-reply".into(),
        }]);
}

#[test]
fn it_should_accept_digits_dashes_underscores_dots_and_colons_in_tags() {
    given(vec![created()])
        .when(add("os:win_11.2-pro"))
        .then_expect(vec![TicketChange::TagAdded {
            tag: "os:win_11.2-pro".into(),
        }]);
}

#[test]
fn it_should_reject_a_tag_with_other_characters() {
    for tag in ["c++", "père", "a/b", "#hash", "   "] {
        given(vec![created()]).when(add(tag)).then_expect_invalid();
    }
}

#[test]
fn it_should_reject_a_tag_over_50_characters() {
    given(vec![created()])
        .when(add(&"t".repeat(51)))
        .then_expect_invalid();
    given(vec![created()]).when(add(&"t".repeat(50))).ticket();
}

#[test]
fn it_should_allow_at_most_50_tags_on_a_ticket() {
    let mut history = vec![created()];
    history.extend((0..50).map(|i| tagged(&format!("t{i}"))));
    given(history.clone())
        .when(add("one-more"))
        .then_expect_invalid();
    // Adding a tag it already has is still a harmless no-op.
    given(history).when(add("t7")).then_expect_nothing();
}

#[test]
fn it_should_remove_a_tag_given_in_any_spelling() {
    let ticket = given(vec![created(), tagged("needs-triage")])
        .when(Command::RemoveTag {
            tag: "Needs Triage".into(),
        })
        .then_expect(vec![TicketChange::TagRemoved {
            tag: "needs-triage".into(),
        }])
        .ticket();
    assert!(ticket.tags.is_empty());
}

#[test]
fn it_should_keep_tags_sorted() {
    let ticket = given(vec![created(), tagged("zebra"), tagged("alpha")])
        .when(add("middle"))
        .ticket();
    assert_eq!(ticket.tags, ["alpha", "middle", "zebra"]);
}
