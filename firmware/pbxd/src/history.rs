//! The call history's writer: records of calls that ended go to the store on a thread of
//! their own, flushed to the card every [`FLUSH`].
//!
//! Why a thread: the store keeps the last 10,000 records in sled's tree, memory that lives
//! long. Written from the exchange's loop, those nodes came from the runtime workers'
//! allocator arenas, in between the short-lived transactions and messages of the calls;
//! after a flood of calls they pinned the arenas' pages, and `malloc_trim` gave back
//! little (glibc keeps one arena per thread that allocates). From a thread of its own the
//! history's memory sits in that thread's arena, and the workers' arenas empty when the
//! calls end.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use store::{CallRecord, Store};

/// How long ended calls may wait in memory before the history is flushed to the card.
pub const FLUSH: Duration = Duration::from_secs(2);

/// Records waiting for the writer at most. A burst beyond this (the writer held up by a
/// slow card) waits for room, as the loop waited for the card when it wrote the history
/// itself: nothing is lost, the ids keep the order the calls ended in, and memory stays
/// bounded.
const QUEUE: usize = 4096;

pub struct Writer {
    store: Store,
    tx: Option<SyncSender<CallRecord>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread. Should the thread not start, records are written by
    /// [`Writer::add`]'s caller (as before the thread existed).
    pub fn start(store: Store) -> Writer {
        let (tx, rx) = mpsc::sync_channel::<CallRecord>(QUEUE);
        let s = store.clone();
        match std::thread::Builder::new()
            .name("history".into())
            .spawn(move || run(&s, &rx))
        {
            Ok(thread) => Writer {
                store,
                tx: Some(tx),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!("call history: no writer thread ({e}); written in the loop");
                Writer {
                    store,
                    tx: None,
                    thread: None,
                }
            }
        }
    }

    /// Hands a record to the writer (waiting for room if it is [`QUEUE`] behind); written
    /// here if the writer is gone.
    pub fn add(&self, r: CallRecord) {
        let r = match &self.tx {
            Some(tx) => match tx.try_send(r) {
                Ok(()) => return,
                Err(TrySendError::Full(r)) => match tx.send(r) {
                    Ok(()) => return,
                    Err(e) => e.0,
                },
                Err(TrySendError::Disconnected(r)) => r,
            },
            None => r,
        };
        write(&self.store, r);
    }

    /// Writes what waits, flushes it to the card and ends the thread (as dropping the
    /// writer does, on any way out of the loop).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!("call history: the writer thread panicked");
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::warn!("call history: {e}");
        }
    }
}

fn write(store: &Store, mut r: CallRecord) {
    if let Err(e) = store.add_call(&mut r) {
        tracing::warn!("call history: {e}");
    }
}

fn run(store: &Store, rx: &mpsc::Receiver<CallRecord>) {
    let mut dirty = false;
    let mut last_flush = Instant::now();
    loop {
        let wait = if dirty {
            FLUSH.saturating_sub(last_flush.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        match rx.recv_timeout(wait) {
            Ok(r) => {
                write(store, r);
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if dirty && last_flush.elapsed() >= FLUSH {
            dirty = false;
            last_flush = Instant::now();
            if let Err(e) = store.flush() {
                tracing::warn!("call history: {e}");
            }
        }
    }
    // What is left unflushed is flushed by the writer's drop, which ended the queue and
    // waits for this thread.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(caller: &str) -> CallRecord {
        CallRecord {
            id: 0,
            start: 1,
            answered: None,
            end: 2,
            caller: caller.into(),
            caller_name: String::new(),
            called: "200".into(),
            answered_by: String::new(),
            outcome: store::history::Outcome::of_status(486),
            status: 486,
            duration: 0,
            direction: store::history::Direction::Internal,
            trunk: String::new(),
            transferred_by: String::new(),
        }
    }

    #[test]
    fn records_are_written_in_order_and_flushed_by_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let w = Writer::start(store.clone());
        // More than twice the queue, less than the history keeps (10,000).
        let n = 2 * QUEUE + 1000;
        for i in 0..n {
            // More than the queue holds: the caller waits for room.
            w.add(record(&i.to_string()));
        }
        w.stop();
        let all = store
            .history(&store::HistoryQuery {
                limit: 100_000,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), n);
        // Newest first: the ids and the order the records were added in agree.
        for (k, r) in all.iter().rev().enumerate() {
            assert_eq!(r.caller, k.to_string(), "record {k}");
            assert!(k == 0 || all[n - k].id < r.id, "record {k}");
        }
    }
}
