//! The life of a KYC request and the rule that it only ever moves forward.

use super::timestamp::UnixMs;
use std::fmt;

/// Why a request ended expired when its time ran out.
pub const EXPIRED_REASON: &str = "The KYC link expired before the customer completed it.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KycState {
    /// Stored, provider not yet asked.
    Created,
    /// Provider session exists; the customer has not opened the link.
    Pending,
    /// The customer opened the link.
    InProgress,
    /// The customer finished; a reviewer (or the provider) has yet to decide.
    AwaitingApproval,
    Approved,
    Rejected,
    Expired,
    /// The provider could not create the session.
    Failed,
}

/// What a partner sees of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Success,
    Failure,
}

impl KycState {
    pub const ALL: [KycState; 8] = [
        Self::Created,
        Self::Pending,
        Self::InProgress,
        Self::AwaitingApproval,
        Self::Approved,
        Self::Rejected,
        Self::Expired,
        Self::Failed,
    ];

    /// Position in the one-way order; terminal states share the top rank so none of them
    /// can replace another.
    pub fn rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Pending => 1,
            Self::InProgress => 2,
            Self::AwaitingApproval => 3,
            Self::Approved | Self::Rejected | Self::Expired | Self::Failed => 4,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    /// Not yet decided: an identical init may reuse it.
    pub fn is_open(self) -> bool {
        !self.is_terminal()
    }

    /// Still waiting on the customer, so the request's expiry applies; once the customer
    /// has finished, only a verdict ends it.
    pub fn expires_by_time(self) -> bool {
        self.rank() < Self::AwaitingApproval.rank()
    }

    /// The state as of `now` (unix ms) for a request whose link runs out at
    /// `expires_at`: `expired` once its time ran out while it still waited on the
    /// customer, before any sweep got to it, so reads never depend on the sweeper's timing.
    pub fn as_of(self, expires_at: UnixMs, now: UnixMs) -> KycState {
        if self.expires_by_time() && expires_at <= now {
            Self::Expired
        } else {
            self
        }
    }

    /// The rank guard: a move is allowed only to a strictly higher rank.
    pub fn can_move_to(self, next: KycState) -> bool {
        next.rank() > self.rank()
    }

    pub fn verdict(self) -> Verdict {
        match self {
            Self::Approved => Verdict::Success,
            Self::Rejected | Self::Expired | Self::Failed => Verdict::Failure,
            _ => Verdict::Pending,
        }
    }

    /// How a reply or a callback puts this state to a partner in words.
    pub fn outcome_message(self) -> &'static str {
        match self {
            Self::Approved => "Kyc approved",
            Self::Rejected => "Kyc rejected",
            Self::Expired => "Kyc expired",
            Self::Failed => "Kyc failed",
            _ => "Kyc is pending",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for KycState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::KycState::*;
    use super::*;

    #[test]
    fn only_forward() {
        assert!(Pending.can_move_to(InProgress));
        assert!(InProgress.can_move_to(Approved));
        assert!(!Approved.can_move_to(Rejected));
        assert!(!InProgress.can_move_to(Pending));
        assert!(!Expired.can_move_to(Approved));
        assert!(Created.can_move_to(InProgress) && !AwaitingApproval.can_move_to(InProgress));
        for s in KycState::ALL {
            assert_eq!(KycState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn time_runs_out_only_while_waiting_on_the_customer() {
        assert_eq!(Pending.as_of(UnixMs(100), UnixMs(100)), Expired);
        assert_eq!(InProgress.as_of(UnixMs(100), UnixMs(99)), InProgress);
        assert_eq!(
            AwaitingApproval.as_of(UnixMs(100), UnixMs(200)),
            AwaitingApproval
        );
        assert_eq!(Approved.as_of(UnixMs(100), UnixMs(200)), Approved);
    }
}
