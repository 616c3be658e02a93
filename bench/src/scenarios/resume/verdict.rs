//! Judging a resumed client's deliveries: holes (an expected event below the
//! last position received: the server delivers in log order, so it will never
//! come), events still in flight (above it), duplicates, unexpected ones, and
//! when the client had caught up.

use std::collections::HashMap;
use std::time::Instant;

use store::Position;
use uuid::Uuid;

use super::Resumed;
use crate::driver::Mutation;

/// What one client's deliveries show.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Judged {
    /// Expected events never received below the last position received.
    holes: u64,
    /// Expected events never received above the last position received.
    in_flight: u64,
    duplicated: u64,
    /// Deliveries of events the client does not expect.
    unexpected: u64,
    /// Events up to the reconnect head received on the resumed socket.
    backlog: u64,
    /// When it had every expected event up to the reconnect head (and its
    /// resumed socket was subscribed); `None` if one never came.
    caught_up: Option<Instant>,
    /// When it had every expected event; `None` if one never came.
    at_final_head: Option<Instant>,
}

/// Judges one client's deliveries against `wanted`, the events it expects.
pub(super) fn judge(
    wanted: &[&Mutation],
    resumed: &Resumed,
    by_id: &HashMap<Uuid, &Mutation>,
    head: Position,
) -> Judged {
    let mut judged = Judged::default();
    let mut seen: HashMap<Uuid, (u32, Instant)> = HashMap::with_capacity(wanted.len());
    let mut reached = Position::START;
    for (i, (id, arrived)) in resumed.log.received.iter().enumerate() {
        let entry = seen.entry(*id).or_insert((0, *arrived));
        entry.0 += 1;
        if let Some(m) = by_id.get(id) {
            reached = reached.max(m.position);
            if m.position <= head && i >= resumed.before_drop {
                judged.backlog += 1;
            }
        }
    }
    let mut caught_up = Some(resumed.resubscribed);
    let mut at_final_head = Some(resumed.resubscribed);
    for m in wanted {
        match seen.remove(&m.event_id) {
            Some((n, arrived)) => {
                judged.duplicated += u64::from(n - 1);
                if m.position <= head {
                    caught_up = caught_up.map(|t| t.max(arrived));
                }
                at_final_head = at_final_head.map(|t| t.max(arrived));
            }
            None => {
                if m.position < reached {
                    judged.holes += 1;
                } else {
                    judged.in_flight += 1;
                }
                if m.position <= head {
                    caught_up = None;
                }
                at_final_head = None;
            }
        }
    }
    // Whatever is left was delivered but not expected.
    judged.unexpected = seen.values().map(|(n, _)| u64::from(*n)).sum();
    judged.caught_up = caught_up;
    judged.at_final_head = at_final_head;
    judged
}

/// Every client's [`Judged`], summed.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub(super) holes: u64,
    pub(super) in_flight: u64,
    pub(super) duplicated: u64,
    pub(super) unexpected: u64,
    pub(super) backlog: u64,
    /// Per client that caught up to the reconnect head: microseconds from
    /// the reconnect until it had.
    pub(super) caught_up: Vec<u64>,
    /// Microseconds from the driver's stop until the last client had every
    /// expected event; `None` if one never did.
    pub(super) at_final_head: Option<u64>,
    /// Clients added so far (before the first, `at_final_head` means nothing).
    clients: usize,
}

impl Verdict {
    pub(super) fn add(&mut self, judged: &Judged, reconnected_at: Instant, stopped_at: Instant) {
        self.holes += judged.holes;
        self.in_flight += judged.in_flight;
        self.duplicated += judged.duplicated;
        self.unexpected += judged.unexpected;
        self.backlog += judged.backlog;
        if let Some(t) = judged.caught_up {
            self.caught_up
                .push(t.saturating_duration_since(reconnected_at).as_micros() as u64);
        }
        let final_head = judged
            .at_final_head
            .map(|t| t.saturating_duration_since(stopped_at).as_micros() as u64);
        self.at_final_head = match (self.clients, self.at_final_head, final_head) {
            (0, _, reached) => reached,
            (_, Some(so_far), Some(reached)) => Some(so_far.max(reached)),
            _ => None,
        };
        self.clients += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::driver::Kind;
    use crate::ws_client::ClientLog;

    fn mutation(seq: u64, at: Instant) -> Mutation {
        Mutation {
            event_id: Uuid::new_v4(),
            position: Position::from_sequence(seq),
            ticket: 0,
            kind: Kind::Comment,
            urgent_after: false,
            responded: at,
        }
    }

    /// Mutations at positions 1..=n, and the client's log receiving those
    /// at `received` (positions, in order), one millisecond apart.
    fn client(
        n: u64,
        received: &[u64],
        before_drop: usize,
        t0: Instant,
    ) -> (Vec<Mutation>, Resumed) {
        let mutations: Vec<Mutation> = (1..=n).map(|s| mutation(s, t0)).collect();
        let mut log = ClientLog::default();
        for (i, &p) in received.iter().enumerate() {
            let arrived = t0 + Duration::from_millis(i as u64 + 1);
            log.received
                .push((mutations[p as usize - 1].event_id, arrived));
        }
        let resumed = Resumed {
            log,
            resubscribed: t0,
            before_drop,
        };
        (mutations, resumed)
    }

    fn judged(mutations: &[Mutation], resumed: &Resumed, head: u64) -> Judged {
        let by_id = mutations.iter().map(|m| (m.event_id, m)).collect();
        let wanted: Vec<&Mutation> = mutations.iter().collect();
        judge(&wanted, resumed, &by_id, Position::from_sequence(head))
    }

    #[test]
    fn an_event_missing_below_a_later_delivery_is_a_hole() {
        let t0 = Instant::now();
        let (mutations, resumed) = client(5, &[1, 2, 4, 5], 2, t0);
        let j = judged(&mutations, &resumed, 3);
        assert_eq!((j.holes, j.in_flight), (1, 0));
        assert_eq!(j.caught_up, None, "event 3 (up to the head) never came");
        assert_eq!(j.at_final_head, None);
    }

    #[test]
    fn events_missing_after_the_last_delivery_are_in_flight_not_holes() {
        let t0 = Instant::now();
        let (mutations, resumed) = client(5, &[1, 2, 3], 1, t0);
        let j = judged(&mutations, &resumed, 3);
        assert_eq!((j.holes, j.in_flight), (0, 2));
        assert_eq!(j.caught_up, Some(t0 + Duration::from_millis(3)));
        assert_eq!(j.at_final_head, None);
        assert_eq!(j.backlog, 2, "2 and 3 came on the resumed socket");
    }

    #[test]
    fn a_second_delivery_is_a_duplicate_and_the_first_arrival_counts() {
        let t0 = Instant::now();
        let (mutations, resumed) = client(3, &[1, 2, 2, 3], 4, t0);
        let j = judged(&mutations, &resumed, 3);
        assert_eq!((j.holes, j.in_flight, j.duplicated), (0, 0, 1));
        assert_eq!(j.at_final_head, Some(t0 + Duration::from_millis(4)));
        assert_eq!(j.backlog, 0, "all arrived before the drop");
    }

    #[test]
    fn a_delivery_the_client_does_not_expect_is_unexpected() {
        let t0 = Instant::now();
        let (mutations, resumed) = client(3, &[1, 2, 3], 0, t0);
        let by_id = mutations.iter().map(|m| (m.event_id, m)).collect();
        let wanted: Vec<&Mutation> = vec![&mutations[0], &mutations[2]];
        let j = judge(&wanted, &resumed, &by_id, Position::from_sequence(3));
        assert_eq!((j.holes, j.unexpected), (0, 1));
        assert_eq!(j.caught_up, Some(t0 + Duration::from_millis(3)));
    }

    #[test]
    fn a_client_expecting_nothing_is_caught_up_when_it_resubscribes() {
        let t0 = Instant::now();
        let (_, resumed) = client(0, &[], 0, t0);
        let j = judge(&[], &resumed, &HashMap::new(), Position::START);
        assert_eq!(j.caught_up, Some(t0));
        assert_eq!(j.at_final_head, Some(t0));
    }

    #[test]
    fn the_verdict_has_no_final_head_time_once_one_client_never_got_there() {
        let t0 = Instant::now();
        let mut verdict = Verdict::default();
        let done = Judged {
            at_final_head: Some(t0 + Duration::from_secs(2)),
            ..Judged::default()
        };
        verdict.add(&Judged::default(), t0, t0);
        verdict.add(&done, t0, t0);
        assert_eq!(verdict.at_final_head, None);
        let mut verdict = Verdict::default();
        verdict.add(&done, t0, t0);
        assert_eq!(verdict.at_final_head, Some(2_000_000));
    }
}
