//! What happens to each demo ticket, decided up front from the seed: who
//! opens it, when, and the commands of its life (assignment, status walk,
//! comments, tags, watchers, queue moves), each at its own time in the past.
//! Only then are the commands run, so running them concurrently changes the
//! order of the log, never its content.

use chrono::{DateTime, Duration, Utc};
use domain::{Actor, Command, TicketPriority, TicketStatus};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::cast::Cast;
use super::words;
use crate::users::UserProfile;

/// One command of a ticket's life, at its time.
#[derive(Debug, Clone)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub command: Command,
}

/// One demo ticket: its creation and its history.
#[derive(Debug, Clone)]
pub struct TicketPlan {
    /// Its place in creation order; the idempotency keys are derived from it.
    pub index: usize,
    pub requester: Actor,
    pub created_at: DateTime<Utc>,
    pub request: String,
    pub description: String,
    pub priority: TicketPriority,
    pub queue: String,
    pub tags: Vec<String>,
    pub steps: Vec<Step>,
    /// The queue it ends in, after any move.
    pub final_queue: String,
    /// Its last step's time (its creation without any).
    pub last_at: DateTime<Utc>,
    pub deleted: bool,
}

/// A relation between two tickets (indexes), added by `actor` at `at`.
#[derive(Debug, Clone)]
pub struct RelationPlan {
    pub from: usize,
    pub to: usize,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (item, weight) in items {
        if roll < *weight {
            return item;
        }
        roll -= weight;
    }
    &items[items.len() - 1].0
}

fn fill(rng: &mut ChaCha8Rng, template: &str) -> String {
    template.replace("{n}", &rng.gen_range(2..9999).to_string())
}

fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

/// `count` tickets opened over the `days` before `now`, oldest first.
///
/// Each ticket draws from its own stream of the seed, and its story stops at
/// the first step that would lie in the future: so a later run (a later
/// `now`) plans the same tickets with the same first steps, and the
/// idempotency keys of a second run meet the events of the first.
pub fn tickets(
    seed: u64,
    cast: &Cast,
    count: usize,
    days: u32,
    now: DateTime<Utc>,
) -> Vec<TicketPlan> {
    let mut rng = stream(seed, 1);
    let span = Duration::days(i64::from(days.max(1)));
    let mut opened: Vec<Duration> = (0..count)
        .map(|_| Duration::seconds(rng.gen_range(0..span.num_seconds())))
        .collect();
    // Oldest first, so references follow the calendar.
    opened.sort_by(|a, b| b.cmp(a));
    opened
        .into_iter()
        .enumerate()
        .map(|(index, ago)| {
            let mut rng = stream(seed, 16 + index as u64);
            ticket(&mut rng, cast, index, now - ago, now)
        })
        .collect()
}

/// The generator of one part of the data set: stream 0 draws the people,
/// stream 1 the opening times, 2 the relations, 16 + n the n-th ticket.
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn ticket(
    rng: &mut ChaCha8Rng,
    cast: &Cast,
    index: usize,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> TicketPlan {
    // A few requesters open many tickets, most open one or two.
    let who = if rng.gen_bool(0.3) {
        rng.gen_range(0..cast.requesters.len().min(20))
    } else {
        rng.gen_range(0..cast.requesters.len())
    };
    let requester = &cast.requesters[who];
    let queue = weighted(rng, words::QUEUES).to_string();
    let subject = *pick(rng, words::subjects(&queue));
    let request = fill(rng, subject);
    let description = format!(
        "{}\n\n{}. {}\n\n{}",
        pick(rng, words::OPENINGS),
        request,
        pick(rng, words::DETAILS),
        requester.first_name.as_deref().unwrap_or("")
    );
    let priority = *weighted(
        rng,
        &[
            (TicketPriority::Low, 25),
            (TicketPriority::Medium, 45),
            (TicketPriority::High, 22),
            (TicketPriority::Critical, 8),
        ],
    );
    let tags = if rng.gen_bool(0.4) {
        vec![pick(rng, words::tags(&queue)).to_string()]
    } else {
        vec![]
    };
    let mut plan = TicketPlan {
        index,
        requester: requester.actor(),
        created_at,
        request,
        description,
        priority,
        queue: queue.clone(),
        tags,
        steps: vec![],
        final_queue: queue,
        last_at: created_at,
        deleted: false,
    };
    let mut life = Life {
        rng,
        cast,
        now,
        plan: &mut plan,
        ended: false,
    };
    life.live();
    plan
}

/// Writes one ticket's steps; each `after` moves the clock on and says
/// `false` once the next step would be in the future (the ticket's story
/// stops there). Every step changes something: a no-op appends nothing, so a
/// rerun would decide it again, against the ticket's final state.
struct Life<'a> {
    rng: &'a mut ChaCha8Rng,
    cast: &'a Cast,
    now: DateTime<Utc>,
    plan: &'a mut TicketPlan,
    /// A step fell in the future: the story ends, whatever comes next.
    ended: bool,
}

impl Life<'_> {
    /// After `min..max` minutes, if that is not in the future.
    fn after(&mut self, min: i64, max: i64) -> bool {
        let next = self.plan.last_at + Duration::minutes(self.rng.gen_range(min..max.max(min + 1)));
        if self.ended || next > self.now {
            self.ended = true;
            return false;
        }
        self.plan.last_at = next;
        true
    }

    fn step(&mut self, actor: Actor, command: Command) {
        self.plan.steps.push(Step {
            at: self.plan.last_at,
            actor,
            command,
        });
    }

    fn comment(&mut self, actor: Actor, body: &str, internal: bool) {
        let comment_id = uuid(self.rng);
        self.step(
            actor,
            Command::Comment {
                comment_id,
                body: body.into(),
                internal,
            },
        );
    }

    fn status(&mut self, actor: Actor, status: TicketStatus, comment: Option<&str>) {
        let comment = comment.map(|c| (uuid(self.rng), c.to_string()));
        self.step(actor, Command::ChangeStatus { status, comment });
    }

    fn agent_of(&mut self, queue: &str) -> UserProfile {
        let team = self.cast.team(queue);
        (*pick(self.rng, &team)).clone()
    }

    fn assign(&mut self, by: Actor, to: &UserProfile) {
        self.step(
            by,
            Command::Assign {
                assignee_id: to.id.clone(),
                assignee_roles: Some(to.roles.clone()),
            },
        );
    }

    /// The ticket's story; how far it gets depends on its age.
    fn live(&mut self) {
        let age_days = (self.now - self.plan.created_at).num_days();
        let (resolve, close) = match age_days {
            0..=2 => (0.15, 0.3),
            3..=13 => (0.55, 0.5),
            _ => (0.85, 0.85),
        };
        let requester = self.plan.requester.clone();
        // A few fresh tickets nobody has picked up yet.
        if age_days < 3 && self.rng.gen_bool(0.3) {
            if self.after(60, 24 * 60) && self.rng.gen_bool(0.3) {
                self.comment(requester, "Any news on this?", false);
            }
            return;
        }
        let queue = self.plan.queue.clone();
        let mut agent = self.agent_of(&queue);
        if !self.after(5, 8 * 60) {
            return;
        }
        if self.rng.gen_bool(0.2) {
            let admin = self.cast.admin.actor();
            self.assign(admin, &agent);
        } else {
            self.assign(agent.actor(), &agent);
        }
        if self.rng.gen_bool(0.15) && self.after(1, 60) {
            let colleague = pick(self.rng, &self.cast.requesters).id.clone();
            if colleague != requester.user_id {
                self.step(agent.actor(), Command::Watch { user_id: colleague });
            }
        }
        if !self.after(1, 4 * 60) {
            return;
        }
        let greeting = self
            .rng
            .gen_bool(0.3)
            .then(|| "Thanks, we are on it.".to_string());
        self.status(agent.actor(), TicketStatus::InProgress, greeting.as_deref());
        if !self.after(10, 6 * 60) {
            return;
        }
        let reply = *pick(self.rng, words::AGENT_REPLIES);
        self.comment(agent.actor(), reply, false);
        if self.rng.gen_bool(0.1) && self.after(5, 120) {
            let attachment_id = uuid(self.rng);
            let size = self.rng.gen_range(20_000..2_000_000);
            self.step(
                requester.clone(),
                Command::AddAttachment {
                    attachment_id,
                    name: "screenshot.png".into(),
                    url: format!("https://files.support.example/{attachment_id}/screenshot.png"),
                    mime_type: Some("image/png".into()),
                    size: Some(size),
                },
            );
        }
        if self.rng.gen_bool(0.6) && self.after(30, 2 * 24 * 60) {
            let reply = *pick(self.rng, words::REQUESTER_REPLIES);
            self.comment(requester.clone(), reply, false);
        }
        if self.rng.gen_bool(0.4) && self.after(5, 12 * 60) {
            let note = *pick(self.rng, words::INTERNAL_NOTES);
            self.comment(agent.actor(), note, true);
        }
        if self.rng.gen_bool(0.2) && self.after(5, 24 * 60) {
            let current = self.plan.priority;
            let others: Vec<TicketPriority> = TicketPriority::ALL
                .into_iter()
                .filter(|p| *p != current)
                .collect();
            let priority = *pick(self.rng, &others);
            self.step(agent.actor(), Command::ChangePriority { priority });
        }
        if self.rng.gen_bool(0.25) && self.after(1, 60) {
            let tag = if self.rng.gen_bool(0.7) {
                *pick(self.rng, words::tags(&queue))
            } else {
                *pick(self.rng, words::COMMON_TAGS)
            };
            if !self.plan.tags.iter().any(|t| t == tag) {
                self.step(agent.actor(), Command::AddTag { tag: tag.into() });
            }
        }
        if self.rng.gen_bool(0.08) && self.after(10, 24 * 60) {
            let others: Vec<&str> = words::QUEUES
                .iter()
                .map(|(q, _)| *q)
                .filter(|q| *q != queue)
                .collect();
            let target = pick(self.rng, &others).to_string();
            self.step(
                agent.actor(),
                Command::Move {
                    queue: target.clone(),
                },
            );
            self.plan.final_queue = target.clone();
            let previous = agent.id.clone();
            agent = self.agent_of(&target);
            if agent.id != previous && self.after(5, 4 * 60) {
                self.assign(agent.actor(), &agent);
            }
        }
        if self.rng.gen_bool(0.2) && self.after(30, 24 * 60) {
            let reason = *pick(self.rng, words::HOLD_REASONS);
            self.status(agent.actor(), TicketStatus::OnHold, Some(reason));
            if !self.rng.gen_bool(resolve) || !self.after(24 * 60, 3 * 24 * 60) {
                return;
            }
            self.status(agent.actor(), TicketStatus::InProgress, None);
        }
        if !self.rng.gen_bool(resolve) || !self.after(60, 3 * 24 * 60) {
            return;
        }
        let resolution = *pick(self.rng, words::RESOLUTIONS);
        self.status(agent.actor(), TicketStatus::Resolved, Some(resolution));
        if self.rng.gen_bool(close) && self.after(24 * 60, 5 * 24 * 60) {
            self.status(agent.actor(), TicketStatus::Closed, None);
        }
        if self.rng.gen_bool(0.01) && self.after(60, 24 * 60) {
            let reason = pick(self.rng, words::DELETE_REASONS).to_string();
            let admin = self.cast.admin.actor();
            self.step(
                admin,
                Command::Delete {
                    reason: Some(reason),
                },
            );
            self.plan.deleted = true;
        }
    }
}

/// About one ticket in twenty related to an earlier one of the same queue,
/// by an agent of that queue, after both tickets' last step.
pub fn relations(
    seed: u64,
    cast: &Cast,
    plans: &[TicketPlan],
    now: DateTime<Utc>,
) -> Vec<RelationPlan> {
    let rng = &mut stream(seed, 2);
    let mut out = Vec::new();
    let mut last: Vec<DateTime<Utc>> = plans.iter().map(|p| p.last_at).collect();
    for plan in plans.iter().filter(|p| !p.deleted) {
        if !rng.gen_bool(0.05) {
            continue;
        }
        let earlier: Vec<&TicketPlan> = plans[..plan.index]
            .iter()
            .filter(|o| !o.deleted && o.final_queue == plan.final_queue)
            .collect();
        let Some(other) = earlier.choose(rng) else {
            continue;
        };
        let team = cast.team(&plan.final_queue);
        let Some(agent) = team.choose(rng) else {
            continue;
        };
        let after = last[plan.index].max(last[other.index]);
        let at = (after + Duration::minutes(rng.gen_range(1..120))).min(now);
        last[plan.index] = at;
        last[other.index] = at;
        // The agent's team works the queue both tickets are in: they see both.
        out.push(RelationPlan {
            from: plan.index,
            to: other.index,
            actor: agent.actor(),
            at,
        });
    }
    out
}

#[cfg(test)]
mod tests;
