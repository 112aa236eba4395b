//! Bad rows or a bad setup? PostHog refusing one event of a request (a 400 bisected down to
//! it) is that event's fault, and it is dead-lettered. PostHog refusing *every* event of whole
//! requests of unrelated events is the setup's fault — a project that rejects the events, a
//! proxy that answers 400 to everything — and dead-lettering the migration would lose it with
//! exit 0. The rule (docs/ARCHITECTURE.md, "PostHog's answers"):
//!
//! - a request of at least [`MIN_EVENTS`] events whose every event PostHog refused is *wholly
//!   refused*; its dead letters are held back, not recorded (a smaller request proves nothing:
//!   two or three bad rows side by side happen);
//! - a request with an accepted event releases what was held: those were bad rows after all;
//! - [`IN_A_ROW`] wholly refused requests with no accepted one between them stop the migration
//!   (exit 3), and what was held is dropped: nothing of it is marked, the next run sends it;
//! - a run that ends having held some and accepted none stops the same way.
//!
//! `migrate`'s event senders hold wholly refused requests with [`Refusals`]; the identity
//! sender leaves their entries pending (so they come again) and stops after [`IN_A_ROW`].

/// Wholly refused requests in a row that stop the migration.
pub const IN_A_ROW: usize = 3;

/// The fewest events a request must hold for its whole refusal to count against the setup.
pub const MIN_EVENTS: usize = 10;

/// What to do with what was held.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<T> {
    /// Keep holding.
    Hold,
    /// Record these as the refusals they are.
    Release(Vec<T>),
    /// Stop the migration: PostHog refuses everything. `requests` were wholly refused; the
    /// held ones are dropped.
    Stop { requests: usize, reason: String },
}

/// The wholly refused requests held back, and whether anything was accepted this run.
#[derive(Debug)]
pub struct Refusals<T> {
    held: Vec<T>,
    accepted_any: bool,
    last_reason: String,
}

impl<T> Default for Refusals<T> {
    fn default() -> Self {
        Refusals {
            held: Vec::new(),
            accepted_any: false,
            last_reason: String::new(),
        }
    }
}

impl<T> Refusals<T> {
    /// Whether a request of `events` events with `refused` of them refused is wholly refused.
    pub fn is_whole(events: usize, refused: usize) -> bool {
        events >= MIN_EVENTS && refused == events
    }

    /// A wholly refused request, with PostHog's answer to one of its events.
    pub fn wholly_refused(&mut self, request: T, reason: &str) -> Verdict<T> {
        self.held.push(request);
        self.last_reason = reason.to_owned();
        if self.held.len() >= IN_A_ROW {
            return self.stop();
        }
        Verdict::Hold
    }

    /// A request with at least one accepted event: what was held is released.
    pub fn accepted(&mut self) -> Vec<T> {
        self.accepted_any = true;
        std::mem::take(&mut self.held)
    }

    /// The run's end: release what is held, unless nothing at all was accepted.
    pub fn finish(&mut self) -> Verdict<T> {
        if self.held.is_empty() {
            Verdict::Release(Vec::new())
        } else if self.accepted_any {
            Verdict::Release(std::mem::take(&mut self.held))
        } else {
            self.stop()
        }
    }

    fn stop(&mut self) -> Verdict<T> {
        let requests = self.held.len();
        self.held.clear();
        Verdict::Stop {
            requests,
            reason: self.last_reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_wholly_refused_requests_in_a_row_stop_and_drop_what_was_held() {
        let mut refusals = Refusals::default();
        assert_eq!(refusals.wholly_refused(1, "400 a"), Verdict::Hold);
        assert_eq!(refusals.wholly_refused(2, "400 b"), Verdict::Hold);
        assert_eq!(
            refusals.wholly_refused(3, "400 c"),
            Verdict::Stop {
                requests: 3,
                reason: "400 c".into()
            }
        );
        assert_eq!(refusals.finish(), Verdict::Release(Vec::new()));
    }

    #[test]
    fn an_accepted_request_releases_the_held_ones_as_refusals() {
        let mut refusals = Refusals::default();
        assert_eq!(refusals.wholly_refused(1, "400"), Verdict::Hold);
        assert_eq!(refusals.wholly_refused(2, "400"), Verdict::Hold);
        assert_eq!(refusals.accepted(), vec![1, 2]);
        assert_eq!(refusals.wholly_refused(3, "400"), Verdict::Hold);
        assert_eq!(refusals.wholly_refused(4, "400"), Verdict::Hold);
        // Two in a row after an accepted one, then the end: they are released.
        assert_eq!(refusals.finish(), Verdict::Release(vec![3, 4]));
    }

    #[test]
    fn a_run_that_accepted_nothing_and_held_some_stops() {
        let mut refusals = Refusals::default();
        assert_eq!(refusals.wholly_refused("only", "400 x"), Verdict::Hold);
        assert_eq!(
            refusals.finish(),
            Verdict::Stop {
                requests: 1,
                reason: "400 x".into()
            }
        );
    }

    #[test]
    fn a_small_request_is_never_wholly_refused() {
        assert!(!Refusals::<()>::is_whole(1, 1));
        assert!(!Refusals::<()>::is_whole(MIN_EVENTS - 1, MIN_EVENTS - 1));
        assert!(Refusals::<()>::is_whole(MIN_EVENTS, MIN_EVENTS));
        assert!(!Refusals::<()>::is_whole(50, 49));
    }
}
