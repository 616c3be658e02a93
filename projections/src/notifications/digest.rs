//! One notification per recipient of a bulk call (`bulkUpdateSupportTickets`
//! puts the call's id in every event's metadata, `bulkId`): the first
//! ticket event of the call that notifies a recipient makes an ordinary
//! notification, whose id is derived from the call and the recipient rather
//! than from the event; each later one on another ticket adds that ticket to
//! it, and from the second ticket on it is a `DIGEST` listing them all
//! (`ticket_ids`, in the order the log met them). It keeps the position of
//! the first event, so it stays where the inbox first showed it.
//!
//! Within a batch the rows are folded in memory; a call whose events span
//! batches updates the row an earlier batch wrote (and the live side pushes
//! it again as ADDED, with the same id: clients replace it). Either way the
//! row ends the same, so a rebuild, whose batches are cut elsewhere, gives
//! the same inbox.

use std::collections::HashMap;

use uuid::Uuid;

use super::writes::NewRow;
use crate::bind::{execute, fetch, Arg};
use crate::db::ReadTx;
use crate::error::ApplyError;

/// Namespace of digest ids: `v5(DIGEST_NAMESPACE, "<bulk id>/<recipient>")`.
const DIGEST_NAMESPACE: Uuid = Uuid::from_u128(0x6469_6765_7374_6e6f_7469_6669_6361_0001);

/// A row of an earlier batch that a bulk call's later event extends.
pub(super) struct Extended {
    pub recipient: String,
    pub ticket_ids: Vec<Uuid>,
    pub actor: Option<String>,
    pub require_interaction: bool,
}

/// The bulk calls' notifications of one batch.
#[derive(Default)]
pub(super) struct Digests {
    /// Rows of this batch (index into the batch's rows).
    in_batch: HashMap<Uuid, usize>,
    /// Rows of earlier batches, extended by this one.
    pub extended: Vec<(Uuid, Extended)>,
    extended_at: HashMap<Uuid, usize>,
}

/// The id of `recipient`'s notification of bulk call `bulk_id`.
pub(super) fn digest_id(bulk_id: &str, recipient: &str) -> Uuid {
    Uuid::new_v5(
        &DIGEST_NAMESPACE,
        format!("{bulk_id}/{recipient}").as_bytes(),
    )
}

impl Digests {
    /// Folds `row`, a notification of an event of bulk call `bulk_id`, into
    /// the recipient's notification of that call.
    pub async fn fold(
        &mut self,
        tx: &mut ReadTx,
        rows: &mut Vec<NewRow>,
        mut row: NewRow,
        bulk_id: &str,
    ) -> Result<(), ApplyError> {
        let id = digest_id(bulk_id, &row.recipient);
        row.id = id;
        if let Some(&at) = self.in_batch.get(&id) {
            let into = &mut rows[at];
            add(&mut into.ticket_ids, row.ticket_id);
            into.require_interaction |= row.require_interaction;
            return Ok(());
        }
        if let Some(&at) = self.extended_at.get(&id) {
            let into = &mut self.extended[at].1;
            add(&mut into.ticket_ids, row.ticket_id);
            into.require_interaction |= row.require_interaction;
            return Ok(());
        }
        let stored = fetch(
            tx,
            "SELECT ticket_ids, actor, require_interaction FROM notifications WHERE id = $1",
            &[Arg::Id(id)],
        )
        .await?;
        match stored.first() {
            None => {
                self.in_batch.insert(id, rows.len());
                rows.push(row);
            }
            Some(stored) => {
                let mut ticket_ids: Vec<Uuid> = stored.decode("ticket_ids")?;
                if ticket_ids.contains(&row.ticket_id) {
                    return Ok(());
                }
                add(&mut ticket_ids, row.ticket_id);
                self.extended_at.insert(id, self.extended.len());
                self.extended.push((
                    id,
                    Extended {
                        recipient: row.recipient,
                        ticket_ids,
                        actor: stored.opt_text("actor")?,
                        require_interaction: stored.bool("require_interaction")?
                            || row.require_interaction,
                    },
                ));
            }
        }
        Ok(())
    }

    /// Turns every row of this batch that covers two tickets or more into a
    /// DIGEST, `references` giving each ticket's reference.
    pub fn finish(&self, rows: &mut [NewRow], references: &HashMap<Uuid, String>) {
        for &at in self.in_batch.values() {
            let row = &mut rows[at];
            if row.ticket_ids.len() >= 2 {
                let (title, body) = text(&row.ticket_ids, row.actor.as_deref(), references);
                row.reason = domain::notify::Reason::Digest.as_str();
                row.title = title;
                row.body = body;
            }
        }
    }

    /// Every ticket the digests of this batch cover.
    pub fn tickets(&self, rows: &[NewRow]) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .in_batch
            .values()
            .flat_map(|&at| rows[at].ticket_ids.iter().copied())
            .chain(
                self.extended
                    .iter()
                    .flat_map(|(_, e)| e.ticket_ids.iter().copied()),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Writes the extended rows of earlier batches.
pub(super) async fn save_extended(
    tx: &mut ReadTx,
    extended: &[(Uuid, Extended)],
    references: &HashMap<Uuid, String>,
) -> Result<(), ApplyError> {
    for (id, e) in extended {
        let (title, body) = text(&e.ticket_ids, e.actor.as_deref(), references);
        execute(
            tx,
            "UPDATE notifications SET reason = $2, ticket_ids = $3, title = $4, body = $5, \
             require_interaction = $6 WHERE id = $1",
            &[
                Arg::Id(*id),
                Arg::Text(domain::notify::Reason::Digest.as_str()),
                Arg::Json(&serde_json::json!(e.ticket_ids)),
                Arg::Text(&title),
                Arg::Text(&body),
                Arg::Bool(e.require_interaction),
            ],
        )
        .await?;
    }
    Ok(())
}

fn add(ids: &mut Vec<Uuid>, id: Uuid) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// A digest's title and body: how many tickets, by whom, and which.
fn text(
    ticket_ids: &[Uuid],
    actor: Option<&str>,
    references: &HashMap<Uuid, String>,
) -> (String, String) {
    let by = actor.unwrap_or("the system");
    let listed: Vec<&str> = ticket_ids
        .iter()
        .map(|id| references.get(id).map_or("a ticket", String::as_str))
        .collect();
    (
        format!("{} tickets changed by {by}", ticket_ids.len()),
        listed.join(", "),
    )
}
