//! Audiences: named token lists kept in the queue's backend, which a campaign targets and
//! which its results clean. A token no longer registered is removed, a canonical id replaces
//! its token (legacy), a token FCM calls invalid is flagged (kept, not sent again). Each
//! change is applied in the transaction (or script) that records its settlement, so a
//! settlement recorded twice applies nothing twice, and each is listed once in the
//! audience's change feed for the application's own database to follow.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fate::{Final, Settlement};
use crate::store::BoxFuture;

/// The longest audience name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub const MAX_AUDIENCE_NAME: usize = 64;

/// True for a name an audience may have.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_AUDIENCE_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What a result did to a token of an audience.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// No longer registered: removed from the audience.
    Removed,
    /// Replaced by its canonical id.
    Replaced {
        /// The canonical id that took its place.
        by: String,
    },
    /// FCM said the token itself is invalid: kept, flagged, no longer sent to.
    Flagged {
        /// FCM's error code.
        code: String,
    },
}

impl Change {
    /// The change's name, as the feed and the stores write it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Removed => "removed",
            Self::Replaced { .. } => "replaced",
            Self::Flagged { .. } => "flagged",
        }
    }

    /// What the change carries: the canonical id, or the code.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Removed => None,
            Self::Replaced { by } => Some(by),
            Self::Flagged { code } => Some(code),
        }
    }

    /// The change named `name` carrying `value`, as a store reads it back.
    pub(crate) fn from_parts(name: &str, value: Option<String>) -> Option<Self> {
        match (name, value) {
            ("removed", _) => Some(Self::Removed),
            ("replaced", Some(by)) => Some(Self::Replaced { by }),
            ("flagged", Some(code)) => Some(Self::Flagged { code }),
            _ => None,
        }
    }
}

/// One change of an audience's feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudienceChange {
    /// Where it is in the feed: pass the last one as `since` to read on.
    pub cursor: u64,
    /// The token changed.
    pub token: String,
    /// What happened to it.
    #[serde(flatten)]
    pub change: Change,
    /// The job whose result it was.
    pub job_id: String,
    /// When it was applied (ms since the Unix epoch).
    pub at_ms: u64,
}

/// A token of an audience.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudienceToken {
    /// The token.
    pub token: String,
    /// The error code it was flagged with, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
}

/// What `settlement`'s records change in its audience, in order: not registered removes,
/// a canonical id replaces, an invalid token (FCM v1's `INVALID_ARGUMENT` blaming
/// `message.token`, legacy's `InvalidRegistration`) flags.
pub(crate) fn changes(settlement: &Settlement) -> Vec<(&str, Change)> {
    let change = |fate: &Final| match fate {
        Final::NotRegistered => Some(Change::Removed),
        Final::Delivered { canonical: Some(by), .. } => Some(Change::Replaced { by: by.clone() }),
        Final::Failed { code, .. } if code == "InvalidRegistration" => Some(Change::Flagged { code: code.clone() }),
        Final::Failed { code, detail: Some(detail) }
            if code == "INVALID_ARGUMENT" && detail.contains("field message.token") =>
        {
            Some(Change::Flagged { code: code.clone() })
        }
        _ => None,
    };
    settlement.records.iter().filter_map(|record| Some((record.recipient.as_str(), change(&record.fate)?))).collect()
}

/// Where audiences are kept: the queue's backend ([`Queue`](crate::Queue)).
pub trait Audiences: Send + Sync + 'static {
    /// Makes `name` hold exactly `tokens` (duplicates once); returns how many it holds.
    fn put_audience<'a>(&'a self, name: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<u64, Error>>;

    /// Adds `tokens` to `name` (creating it); returns how many were new.
    fn add_to_audience<'a>(&'a self, name: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<u64, Error>>;

    /// Up to `limit` tokens of `name` after `after` (in byte order), flagged ones included.
    fn audience_page<'a>(
        &'a self,
        name: &'a str,
        after: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AudienceToken>, Error>>;

    /// Every token of `name` a campaign sends to: all but the flagged, in byte order.
    fn audience_recipients<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, Error>>;

    /// Deletes `name`, its tokens and its feed; false when it held no token.
    fn delete_audience<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>>;

    /// Up to `limit` changes of `name`'s feed after cursor `since` (0 for the first).
    fn audience_changes<'a>(
        &'a self,
        name: &'a str,
        since: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AudienceChange>, Error>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fate::Record;

    fn record(recipient: &str, fate: Final) -> Record {
        Record {
            job_id: "j".into(),
            attempt: 0,
            recipient: recipient.into(),
            correlation_id: None,
            campaign_id: None,
            project: None,
            fate,
        }
    }

    #[test]
    fn results_become_changes_of_the_token_they_concern() {
        let delivered = |canonical: Option<&str>| Final::Delivered {
            message_id: "m".into(),
            canonical: canonical.map(str::to_owned),
        };
        let failed = |code: &str, detail: &str| Final::Failed { code: code.into(), detail: Some(detail.into()) };
        let records = vec![
            record("ok", delivered(None)),
            record("moved", delivered(Some("new"))),
            record("gone", Final::NotRegistered),
            record("bad", failed("INVALID_ARGUMENT", "The registration token is not valid; field message.token: x")),
            record("typo", failed("INVALID_ARGUMENT", "field message.android.ttl: bad")),
            record("old", failed("InvalidRegistration", "")),
            record("later", Final::GivenUp { cause: "UNAVAILABLE".into() }),
        ];
        let settlement = Settlement {
            job_id: "j".into(),
            attempt: 0,
            records,
            retry: None,
            audience: Some("a".into()),
            webhook: None,
        };
        assert_eq!(
            changes(&settlement),
            [
                ("moved", Change::Replaced { by: "new".into() }),
                ("gone", Change::Removed),
                ("bad", Change::Flagged { code: "INVALID_ARGUMENT".into() }),
                ("old", Change::Flagged { code: "InvalidRegistration".into() }),
            ]
        );
        assert!(is_valid_name("shop.users-2") && !is_valid_name("") && !is_valid_name("a/b"));
        assert!(!is_valid_name(&"a".repeat(65)));
    }
}
