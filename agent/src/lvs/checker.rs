//! One checker's verdicts over time, as keepalived's checkers count them
//! (keepalived.conf(5), `retry` and `delay_before_retry`): a live server
//! is declared down after `retry + 1` failed checks in a row, the retries
//! `delay_before_retry` apart; a down server is declared up by one passing
//! check; between verdicts the next check is `delay_loop` away.
//!
//! Pure: the probe's outcome and nothing else goes in, the verdict and the
//! delay to the next check come out, so the timing is tested without a
//! clock ([`super::runner`] does the waiting).

use std::time::Duration;

use super::plan::CheckerPlan;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// MISC_CHECK with misc_dynamic: passed, and the weight is this.
    PassWeight(u32),
    Fail(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        !matches!(self, Outcome::Fail(_))
    }
}

/// A change of the checker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Up,
    Down,
}

/// The count of one checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckerState {
    up: bool,
    /// Failures in a row while up, not yet a verdict.
    failures: u32,
    retry: u32,
    delay_loop: Duration,
    delay_before_retry: Duration,
}

impl CheckerState {
    /// A checker starting `up` (keepalived: up unless `alpha`).
    pub fn new(plan: &CheckerPlan, up: bool) -> CheckerState {
        CheckerState {
            up,
            failures: 0,
            retry: plan.retry,
            delay_loop: plan.delay_loop,
            delay_before_retry: plan.delay_before_retry,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records `outcome`: the verdict if it changed, and when to check next.
    pub fn record(&mut self, outcome: &Outcome) -> (Option<Verdict>, Duration) {
        if outcome.passed() {
            self.failures = 0;
            if self.up {
                return (None, self.delay_loop);
            }
            self.up = true;
            return (Some(Verdict::Up), self.delay_loop);
        }
        if !self.up {
            return (None, self.delay_loop);
        }
        if self.failures < self.retry {
            self.failures += 1;
            return (None, self.delay_before_retry);
        }
        self.failures = 0;
        self.up = false;
        (Some(Verdict::Down), self.delay_loop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::plan::Probe;

    fn plan(retry: u32) -> CheckerPlan {
        CheckerPlan {
            probe: Probe::Misc {
                command: "/bin/true".to_owned(),
                timeout: Duration::from_secs(1),
                dynamic: false,
                user: None,
            },
            delay_loop: Duration::from_secs(6),
            retry,
            delay_before_retry: Duration::from_secs(2),
            warmup: None,
        }
    }

    #[test]
    fn down_after_retry_plus_one_failures_spaced_by_delay_before_retry() {
        let mut c = CheckerState::new(&plan(2), true);
        let fail = Outcome::Fail("refused".to_owned());
        assert_eq!(c.record(&fail), (None, Duration::from_secs(2)));
        assert_eq!(c.record(&fail), (None, Duration::from_secs(2)));
        assert_eq!(
            c.record(&fail),
            (Some(Verdict::Down), Duration::from_secs(6))
        );
        // Down stays down quietly, checked every delay_loop.
        assert_eq!(c.record(&fail), (None, Duration::from_secs(6)));
        // One pass brings it back.
        assert_eq!(
            c.record(&Outcome::Pass),
            (Some(Verdict::Up), Duration::from_secs(6))
        );
    }

    #[test]
    fn a_pass_between_failures_resets_the_count() {
        let mut c = CheckerState::new(&plan(1), true);
        let fail = Outcome::Fail("timeout".to_owned());
        assert_eq!(c.record(&fail).0, None);
        assert_eq!(c.record(&Outcome::PassWeight(3)).0, None);
        assert_eq!(c.record(&fail).0, None);
        assert_eq!(c.record(&fail).0, Some(Verdict::Down));
    }

    #[test]
    fn alpha_starts_down_and_retry_zero_fails_at_once() {
        let mut c = CheckerState::new(&plan(0), false);
        assert!(!c.is_up());
        assert_eq!(c.record(&Outcome::Pass).0, Some(Verdict::Up));
        assert_eq!(
            c.record(&Outcome::Fail("exit 1".to_owned())).0,
            Some(Verdict::Down)
        );
    }
}
