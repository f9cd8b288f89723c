//! Call history (Kerio 27.6): one record per call, written by pbxd as the exchange
//! emits them, kept within [`HISTORY_KEEP`] records (the oldest go first).
//!
//! Records are inserted without a flush of their own: pbxd flushes every few seconds
//! while calls end, so a busy box does not write the card once a call.

use crate::{be, Store, StoreError};
use serde::{Deserialize, Serialize};

const HISTORY: &str = "call_history";

/// Records the history keeps; about 300 bytes each.
pub const HISTORY_KEEP: u64 = 10_000;

/// How a call ended for its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    Busy,
    NoAnswer,
    Unavailable,
    Cancelled,
    Refused,
    Failed,
}

impl Outcome {
    /// The outcome of a call whose caller got `status` (200 when answered).
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Answered,
            486 | 600 => Outcome::Busy,
            408 | 480 => Outcome::NoAnswer,
            404 | 410 | 484 => Outcome::Unavailable,
            487 => Outcome::Cancelled,
            403 | 603 => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }

    /// In words, as the history shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no answer",
            Outcome::Unavailable => "unavailable",
            Outcome::Cancelled => "cancelled",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Internal,
    Inbound,
    Outbound,
}

/// One call of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Given by the store; 0 before.
    #[serde(default)]
    pub id: u64,
    /// Unix seconds: when the call came in, was answered (if it was) and ended.
    pub start: u64,
    pub answered: Option<u64>,
    pub end: u64,
    /// The calling number and name.
    pub caller: String,
    #[serde(default)]
    pub caller_name: String,
    /// The number dialled.
    pub called: String,
    /// Who talked to the caller last (the extension or number that answered, or the
    /// one a transfer connected); empty when nobody answered.
    #[serde(default)]
    pub answered_by: String,
    pub outcome: Outcome,
    /// The SIP status the caller got (200 when answered).
    pub status: u16,
    /// Seconds from answer to end.
    pub duration: u64,
    pub direction: Direction,
    /// The provider or link the call came in or went out through; empty if internal.
    #[serde(default)]
    pub trunk: String,
    /// The extension that transferred the call, if one did.
    #[serde(default)]
    pub transferred_by: String,
}

impl CallRecord {
    /// Whether `number` took part (as caller, called, answerer or transferor).
    pub fn involves(&self, number: &str) -> bool {
        [
            &self.caller,
            &self.called,
            &self.answered_by,
            &self.transferred_by,
        ]
        .iter()
        .any(|n| *n == number)
    }
}

/// Which records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only calls this number took part in (exact), or whose numbers contain it
    /// (`contains`).
    pub number: Option<String>,
    pub contains: bool,
    /// Unix seconds, inclusive.
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub outcome: Option<Outcome>,
    /// At most this many, newest first (0 = all).
    pub limit: usize,
}

impl HistoryQuery {
    fn matches(&self, r: &CallRecord) -> bool {
        let number_ok = match &self.number {
            None => true,
            Some(n) if !self.contains => r.involves(n),
            Some(n) => [&r.caller, &r.called, &r.answered_by, &r.caller_name]
                .iter()
                .any(|f| f.contains(n.as_str())),
        };
        number_ok
            && self.since.is_none_or(|s| r.start >= s)
            && self.until.is_none_or(|u| r.start <= u)
            && self.outcome.is_none_or(|o| r.outcome == o)
    }
}

impl Store {
    /// Adds a record (its `id` is set), dropping the oldest beyond [`HISTORY_KEEP`].
    /// Not flushed: see [`Store::flush`].
    pub fn add_call(&self, r: &mut CallRecord) -> Result<u64, StoreError> {
        self.add_call_keeping(r, HISTORY_KEEP)
    }

    fn add_call_keeping(&self, r: &mut CallRecord, keep: u64) -> Result<u64, StoreError> {
        let t = self.db.open_tree(HISTORY)?;
        let mut ids = self.history_ids.lock().unwrap_or_else(|e| e.into_inner());
        // Ids are the newest key plus one, so the keys are consecutive and the oldest
        // are the smallest: the count is last - first + 1 without walking the tree
        // (sled's own id generator jumps ahead at every start). Both ends are read from
        // the tree once, then kept here (only this store writes the tree).
        let (mut first, last) = match *ids {
            Some(known) => known,
            None => {
                let last = match t.last()? {
                    Some((k, _)) => crate::read_u64(&k)?,
                    None => 0,
                };
                let first = match t.first()? {
                    Some((k, _)) => crate::read_u64(&k)?,
                    None => last + 1,
                };
                (first, last)
            }
        };
        r.id = last + 1;
        // Forgotten until the tree says again should a write fail half way.
        *ids = None;
        t.insert(be(r.id), serde_json::to_vec(r).expect("record serialises"))?;
        // The oldest beyond the cap go, by the keys there are (ids written before they
        // were consecutive may have gaps).
        let cut = (r.id + 1).saturating_sub(keep);
        if first < cut {
            for k in t.range(..be(cut)).keys() {
                t.remove(k?)?;
            }
            first = cut;
        }
        *ids = Some((first, r.id));
        Ok(r.id)
    }

    /// Writes what was added since the last flush to the card.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The records `q` asks for, newest first. A record that cannot be read is skipped.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<CallRecord>, StoreError> {
        let t = self.db.open_tree(HISTORY)?;
        let mut out = Vec::new();
        for kv in t.iter().rev() {
            let (_, v) = kv?;
            let Ok(r) = serde_json::from_slice::<CallRecord>(&v) else {
                continue;
            };
            if q.matches(&r) {
                out.push(r);
                if q.limit > 0 && out.len() >= q.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Forgets the whole history (Kerio: Advanced, Clear).
    pub fn clear_history(&self) -> Result<(), StoreError> {
        let mut ids = self.history_ids.lock().unwrap_or_else(|e| e.into_inner());
        *ids = None;
        self.db.open_tree(HISTORY)?.clear()?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(caller: &str, called: &str, start: u64, status: u16) -> CallRecord {
        CallRecord {
            id: 0,
            start,
            answered: (status == 200).then_some(start + 2),
            end: start + 10,
            caller: caller.into(),
            caller_name: String::new(),
            called: called.into(),
            answered_by: if status == 200 {
                called.into()
            } else {
                String::new()
            },
            outcome: Outcome::of_status(status),
            status,
            duration: if status == 200 { 8 } else { 0 },
            direction: Direction::Internal,
            trunk: String::new(),
            transferred_by: String::new(),
        }
    }

    #[test]
    fn records_are_kept_filtered_capped_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            for i in 0..30u64 {
                let mut r = rec("101", if i % 2 == 0 { "102" } else { "103" }, 1000 + i, 200);
                s.add_call_keeping(&mut r, 20).unwrap();
            }
            let mut busy = rec("104", "102", 2000, 486);
            s.add_call_keeping(&mut busy, 20).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let all = s.history(&HistoryQuery::default()).unwrap();
        assert_eq!(all.len(), 20, "capped");
        // A record added after the reopen keeps the others.
        let mut one = rec("105", "101", 1500, 200);
        s.add_call_keeping(&mut one, 20).unwrap();
        assert_eq!(
            one.id, 32,
            "ids go on from the tree's newest after a reopen"
        );
        let all = s.history(&HistoryQuery::default()).unwrap();
        assert_eq!(
            (all.len(), all[0].caller.as_str(), all[1].caller.as_str()),
            (20, "105", "104")
        );
        let busy = s
            .history(&HistoryQuery {
                number: Some("104".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(busy[0].outcome, Outcome::Busy);
        let q = HistoryQuery {
            number: Some("103".into()),
            ..Default::default()
        };
        assert!(s.history(&q).unwrap().iter().all(|r| r.called == "103"));
        let q = HistoryQuery {
            outcome: Some(Outcome::Busy),
            ..Default::default()
        };
        assert_eq!(s.history(&q).unwrap().len(), 1);
        let q = HistoryQuery {
            since: Some(1025),
            until: Some(1027),
            limit: 2,
            ..Default::default()
        };
        let r = s.history(&q).unwrap();
        assert_eq!(r.iter().map(|r| r.start).collect::<Vec<_>>(), [1027, 1026]);
        // A record that cannot be read is skipped, not fatal.
        s.db.open_tree(HISTORY)
            .unwrap()
            .insert(be(u64::MAX), b"not json".to_vec())
            .unwrap();
        assert_eq!(s.history(&HistoryQuery::default()).unwrap().len(), 20);
        s.clear_history().unwrap();
        assert!(s.history(&HistoryQuery::default()).unwrap().is_empty());
    }
}
