//! Length and format limits of comments, attachments and user ids.

use super::*;

fn comment(body: &str) -> Command {
    Command::Comment {
        comment_id: COMMENT,
        body: body.into(),
        internal: false,
    }
}

fn attach(name: &str, url: &str, size: Option<i64>) -> Command {
    Command::AddAttachment {
        attachment_id: ATTACHMENT,
        name: name.into(),
        url: url.into(),
        mime_type: Some(" ".into()),
        size,
    }
}

#[test]
fn it_should_require_a_comment_of_1_to_10000_characters() {
    given(vec![created()])
        .when(comment("  "))
        .then_expect_invalid();
    given(vec![created()])
        .when(comment(&"c".repeat(10_001)))
        .then_expect_invalid();
    given(vec![created()])
        .when(comment(&"c".repeat(10_000)))
        .ticket();
}

#[test]
fn it_should_record_a_trimmed_comment_by_its_author() {
    let ticket = given(vec![created()])
        .as_actor(requester())
        .when(comment("  thanks!  "))
        .ticket();
    assert_eq!(ticket.comments.len(), 1);
    assert_eq!(ticket.comments[0].body, "thanks!");
    assert_eq!(ticket.comments[0].author, "alice");
}

#[test]
fn it_should_record_an_attachment_with_a_blank_mime_type_as_none() {
    given(vec![created()])
        .when(attach(" log.txt ", " /files/log.txt ", Some(0)))
        .then_expect(vec![TicketChange::AttachmentAdded {
            attachment_id: ATTACHMENT,
            name: "log.txt".into(),
            url: "/files/log.txt".into(),
            mime_type: None,
            size: Some(0),
        }]);
}

#[test]
fn it_should_require_an_attachment_name_of_1_to_255_characters() {
    given(vec![created()])
        .when(attach(" ", "https://x.example/a", None))
        .then_expect_invalid();
    given(vec![created()])
        .when(attach(&"n".repeat(256), "https://x.example/a", None))
        .then_expect_invalid();
}

#[test]
fn it_should_accept_only_http_https_or_local_attachment_urls() {
    for url in ["javascript:alert(1)", "file:///etc/passwd", "ftp://x", " "] {
        given(vec![created()])
            .when(attach("a", url, None))
            .then_expect_invalid();
    }
    for url in ["http://x.example/a", "https://x.example/a", "/files/a"] {
        given(vec![created()]).when(attach("a", url, None)).ticket();
    }
}

#[test]
fn it_should_reject_an_attachment_url_over_2048_characters() {
    let url = format!("https://x.example/{}", "u".repeat(2048));
    given(vec![created()])
        .when(attach("a", &url, None))
        .then_expect_invalid();
}

#[test]
fn it_should_reject_a_negative_attachment_size() {
    given(vec![created()])
        .when(attach("a", "/a", Some(-1)))
        .then_expect_invalid();
}

#[test]
fn it_should_require_user_ids_of_1_to_128_characters() {
    for user_id in [" ".to_string(), "u".repeat(129)] {
        given(vec![created()])
            .when(Command::Watch {
                user_id: user_id.clone(),
            })
            .then_expect_invalid();
        given(vec![created()])
            .when(Command::Assign {
                assignee_id: user_id,
                assignee_roles: Some(vec![Role::Agent]),
            })
            .then_expect_invalid();
    }
}
