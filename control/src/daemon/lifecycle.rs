//! One arm's life: which moves are legal from which state. The request handlers, the event
//! pump and start-up recovery all move an arm through [`ArmLifecycle::step`]; nothing else
//! sets an arm's state.
//!
//! ```text
//!  pending ──acked──► armed ──sent──► fired ──last outcome──► done
//!     │                 │ │                                    ▲
//!     │                 │ ╰──── last outcome (nothing sent) ───╯
//!     │                 ├──disarmed──► disarmed ◄── pending (a journaled disarm, recovery)
//!     │                 ╰──missed────► missed   ◄── pending (recovery: its time passed)
//!     ╰──refused──► rejected
//! ```
//!
//! A new trigger kind needs nothing here: triggers decide *when* `sent` happens, not which
//! states exist.

use crate::protocol::ArmState;

/// What happened to an arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmStep {
    /// The datapath holds the arm (its `Arm` command was acknowledged).
    Acked,
    /// The arm will never be held: the datapath refused it, or it could not be handed over.
    Refused,
    /// One of its requests left.
    Sent,
    /// One of its outcomes came in (the arm expects one per connection).
    Outcome,
    /// It was dropped unfired.
    Disarmed,
    /// Its scheduled time passed while no daemon ran.
    Missed,
}

impl ArmStep {
    fn name(self) -> &'static str {
        match self {
            ArmStep::Acked => "acknowledged",
            ArmStep::Refused => "refused",
            ArmStep::Sent => "sent",
            ArmStep::Outcome => "given an outcome",
            ArmStep::Disarmed => "disarmed",
            ArmStep::Missed => "missed",
        }
    }
}

/// A step the lifecycle does not allow from the arm's state; the state is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an arm that is {} cannot be {}", .from.name(), .step.name())]
pub struct IllegalStep {
    pub from: ArmState,
    pub step: ArmStep,
}

/// An arm's state and the outcomes it still waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmLifecycle {
    state: ArmState,
    /// Outcomes that close it: one per connection it fires on.
    expected: usize,
    outcomes: usize,
}

impl ArmLifecycle {
    /// A new arm, sent to the datapath and not yet acknowledged.
    pub fn new(expected: usize) -> ArmLifecycle {
        ArmLifecycle {
            state: ArmState::Pending,
            expected,
            outcomes: 0,
        }
    }

    /// An arm as the journal left it. An arm that was armed is pending again: after a
    /// restart no datapath holds it until it is re-armed.
    pub fn restored(state: ArmState, expected: usize, outcomes: usize) -> ArmLifecycle {
        let state = match state {
            ArmState::Armed => ArmState::Pending,
            other => other,
        };
        ArmLifecycle {
            state,
            expected,
            outcomes,
        }
    }

    pub fn state(&self) -> ArmState {
        self.state
    }

    /// Takes `step`, or refuses it (leaving the state as it was) if it is not legal now.
    pub fn step(&mut self, step: ArmStep) -> Result<ArmState, IllegalStep> {
        use ArmState as S;
        let next = match (self.state, step) {
            (S::Pending, ArmStep::Acked) => S::Armed,
            (S::Pending, ArmStep::Refused) => S::Rejected,
            (S::Pending | S::Armed, ArmStep::Disarmed) => S::Disarmed,
            (S::Pending | S::Armed, ArmStep::Missed) => S::Missed,
            (S::Armed | S::Fired, ArmStep::Sent) => S::Fired,
            (S::Armed | S::Fired, ArmStep::Outcome) if self.outcomes < self.expected => {
                self.outcomes += 1;
                match self.outcomes >= self.expected {
                    true => S::Done,
                    false => S::Fired,
                }
            }
            (from, step) => return Err(IllegalStep { from, step }),
        };
        self.state = next;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ArmState as S;

    const ALL_STATES: [ArmState; 7] = [
        S::Pending,
        S::Armed,
        S::Fired,
        S::Done,
        S::Rejected,
        S::Disarmed,
        S::Missed,
    ];
    const ALL_STEPS: [ArmStep; 6] = [
        ArmStep::Acked,
        ArmStep::Refused,
        ArmStep::Sent,
        ArmStep::Outcome,
        ArmStep::Disarmed,
        ArmStep::Missed,
    ];

    fn at(state: ArmState, expected: usize) -> ArmLifecycle {
        ArmLifecycle {
            state,
            expected,
            outcomes: 0,
        }
    }

    #[test]
    fn a_fire_over_two_connections() {
        let mut a = ArmLifecycle::new(2);
        assert_eq!(a.state(), S::Pending);
        assert_eq!(a.step(ArmStep::Acked), Ok(S::Armed));
        assert_eq!(a.step(ArmStep::Sent), Ok(S::Fired));
        assert_eq!(a.step(ArmStep::Sent), Ok(S::Fired));
        assert_eq!(a.step(ArmStep::Outcome), Ok(S::Fired));
        assert_eq!(a.step(ArmStep::Outcome), Ok(S::Done));
        assert_eq!(
            a.step(ArmStep::Outcome),
            Err(IllegalStep {
                from: S::Done,
                step: ArmStep::Outcome
            }),
            "no outcome beyond the expected ones"
        );
    }

    #[test]
    fn nothing_sent_closes_from_armed() {
        let mut a = at(S::Armed, 1);
        assert_eq!(a.step(ArmStep::Outcome), Ok(S::Done));
    }

    #[test]
    fn every_legal_step_and_every_illegal_one() {
        let legal = |from: ArmState, step: ArmStep| -> Option<ArmState> {
            Some(match (from, step) {
                (S::Pending, ArmStep::Acked) => S::Armed,
                (S::Pending, ArmStep::Refused) => S::Rejected,
                (S::Pending | S::Armed, ArmStep::Disarmed) => S::Disarmed,
                (S::Pending | S::Armed, ArmStep::Missed) => S::Missed,
                (S::Armed | S::Fired, ArmStep::Sent) => S::Fired,
                (S::Armed | S::Fired, ArmStep::Outcome) => S::Done, // one expected
                _ => return None,
            })
        };
        for from in ALL_STATES {
            for step in ALL_STEPS {
                let mut a = at(from, 1);
                match legal(from, step) {
                    Some(to) => assert_eq!(a.step(step), Ok(to), "{from:?} {step:?}"),
                    None => {
                        assert_eq!(a.step(step), Err(IllegalStep { from, step }));
                        assert_eq!(a.state(), from, "an illegal step changes nothing");
                    }
                }
            }
        }
    }

    #[test]
    fn closed_states_are_final() {
        for from in [S::Done, S::Rejected, S::Disarmed, S::Missed] {
            for step in ALL_STEPS {
                assert!(at(from, 1).step(step).is_err(), "{from:?} {step:?}");
            }
        }
    }

    #[test]
    fn a_restored_armed_arm_waits_to_be_rearmed() {
        let mut a = ArmLifecycle::restored(S::Armed, 1, 0);
        assert_eq!(a.state(), S::Pending);
        assert_eq!(a.step(ArmStep::Acked), Ok(S::Armed));
        let mut f = ArmLifecycle::restored(S::Fired, 2, 1);
        assert_eq!(f.step(ArmStep::Outcome), Ok(S::Done));
    }

    #[test]
    fn the_error_names_both_ends() {
        let e = at(S::Disarmed, 1).step(ArmStep::Sent).unwrap_err();
        assert_eq!(e.to_string(), "an arm that is disarmed cannot be sent");
    }
}
