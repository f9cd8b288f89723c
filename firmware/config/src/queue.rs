//! Call queues (Kerio 14): callers dial the queue's number, wait with music and
//! announcements, and are handed one at a time to the queue's agents by a strategy.
//! Agents are extensions assigned for good (static) or logging in and out with codes
//! (dynamic).

use serde::{Deserialize, Serialize};

/// The most callers a queue holds (Kerio's limit).
pub const MAX_QUEUE_CALLERS: u32 = 999;

/// The most agents a queue lists (static ones).
pub const MAX_QUEUE_AGENTS: usize = 64;

/// How a waiting caller's agent is chosen among the free ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueStrategy {
    /// Every free agent rings until one answers.
    #[default]
    RingAll,
    /// The agent who has not answered a call of this queue for the longest time.
    LongestIdle,
    /// The agent who has answered the fewest calls of this queue.
    FewestCalls,
    /// A free agent picked at random.
    Random,
    /// The agents in turn, going on after the one rung last (round robin with memory).
    RoundRobin,
}

impl QueueStrategy {
    pub fn label(self) -> &'static str {
        match self {
            QueueStrategy::RingAll => "ring all agents",
            QueueStrategy::LongestIdle => "ring least recently called agent",
            QueueStrategy::FewestCalls => "ring agent with fewest calls",
            QueueStrategy::Random => "ring random agent",
            QueueStrategy::RoundRobin => "round robin with memory",
        }
    }
}

/// A call queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// The number callers dial (from inside, or outside through a DID).
    pub number: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub strategy: QueueStrategy,
    /// The most callers waiting at once; 0: unlimited (up to [`MAX_QUEUE_CALLERS`]).
    #[serde(default)]
    pub max_callers: u32,
    /// Seconds a caller waits at most before the fallback; 0: no limit.
    #[serde(default)]
    pub max_wait_seconds: u32,
    /// Where a caller goes when the queue is full, the wait is over or no agent is
    /// logged in: a number (another queue, an extension), `voicemail:<extension>`, or
    /// empty to hang up after a goodbye.
    #[serde(default)]
    pub fallback: String,
    /// The music on hold collection callers hear; empty: the default one.
    #[serde(default)]
    pub music: String,
    /// Extensions always in the queue.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Extensions may join and leave the queue by dialling the codes below.
    #[serde(default)]
    pub dynamic_agents: bool,
    #[serde(default)]
    pub login_code: String,
    #[serde(default)]
    pub logout_code: String,
    /// Seconds an agent's phone rings before the next agent is tried.
    #[serde(default = "default_ring_seconds")]
    pub ring_seconds: u32,
    /// Seconds after each call before an agent gets the next one.
    #[serde(default)]
    pub wrapup_seconds: u32,
    /// Queues sharing agents: the higher the priority, the sooner its callers get one
    /// (0 to 10).
    #[serde(default)]
    pub priority: u8,
    /// Seconds between announcements of the caller's place (and, with `hold_time`,
    /// the estimated wait); 0: never. The place is also said on entering.
    #[serde(default)]
    pub position_seconds: u32,
    #[serde(default)]
    pub hold_time: bool,
    /// Seconds between the periodic announcement; 0: never.
    #[serde(default)]
    pub periodic_seconds: u32,
    /// The periodic announcement: an uploaded sound or a system prompt; empty: the
    /// prompt asking callers to hold for the next representative.
    #[serde(default)]
    pub periodic_sound: String,
    /// What an agent hears before the caller is put through (the queue's name as
    /// recorded); empty: nothing.
    #[serde(default)]
    pub agent_sound: String,
    /// With no agent logged in, new callers go to the fallback at once.
    #[serde(default)]
    pub refuse_when_empty: bool,
    /// When the last agent logs out, callers waiting go to the fallback.
    #[serde(default)]
    pub leave_when_empty: bool,
    /// Calls an agent answers are recorded (the caller on the left, the agent on the
    /// right), kept up to the box's `recordings_max_mb`.
    #[serde(default)]
    pub record: bool,
}

fn default_ring_seconds() -> u32 {
    20
}

impl Queue {
    /// A ring-all queue with `agents`, all else by default.
    pub fn new(number: &str, agents: &[&str]) -> Queue {
        Queue {
            number: number.into(),
            description: String::new(),
            strategy: QueueStrategy::RingAll,
            max_callers: 0,
            max_wait_seconds: 0,
            fallback: String::new(),
            music: String::new(),
            agents: agents.iter().map(|a| a.to_string()).collect(),
            dynamic_agents: false,
            login_code: String::new(),
            logout_code: String::new(),
            ring_seconds: default_ring_seconds(),
            wrapup_seconds: 0,
            priority: 0,
            position_seconds: 0,
            hold_time: false,
            periodic_seconds: 0,
            periodic_sound: String::new(),
            agent_sound: String::new(),
            refuse_when_empty: false,
            leave_when_empty: false,
            record: false,
        }
    }

    /// How many callers the queue holds.
    pub fn limit(&self) -> usize {
        match self.max_callers {
            0 => MAX_QUEUE_CALLERS as usize,
            n => n.min(MAX_QUEUE_CALLERS) as usize,
        }
    }

    /// The numbers the queue takes in the dial plan: its own and, with dynamic agents,
    /// the login and logout codes.
    pub fn numbers(&self) -> Vec<&str> {
        let mut v = vec![self.number.as_str()];
        if self.dynamic_agents {
            v.push(self.login_code.as_str());
            v.push(self.logout_code.as_str());
        }
        v
    }

    /// What is wrong with the queue by itself, as (field, message).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let digits = |s: &str| crate::is_digits(s) && s.len() <= 20;
        if !digits(&self.number) {
            v.push(("number", "must be 1 to 20 digits".into()));
        }
        if self.description.len() > 200 || self.description.chars().any(char::is_control) {
            v.push((
                "description",
                "must be at most 200 characters on one line".into(),
            ));
        }
        if self.max_callers > MAX_QUEUE_CALLERS {
            v.push((
                "max_callers",
                format!("must be 0 (unlimited) to {MAX_QUEUE_CALLERS}"),
            ));
        }
        if self.max_wait_seconds != 0 && !(10..=86_400).contains(&self.max_wait_seconds) {
            v.push((
                "max_wait_seconds",
                "must be 0 (no limit) or 10 to 86400 seconds".into(),
            ));
        }
        if !self.fallback.is_empty()
            && (!crate::valid_target(&self.fallback)
                || self.fallback == crate::HANG_UP
                || self.fallback == self.number)
        {
            v.push((
                "fallback",
                "must be another number, voicemail:<extension> or empty".into(),
            ));
        }
        if self.agents.len() > MAX_QUEUE_AGENTS {
            v.push(("agents", format!("at most {MAX_QUEUE_AGENTS} extensions")));
        }
        for (i, a) in self.agents.iter().enumerate() {
            if self.agents[..i].contains(a) {
                v.push(("agents", format!("{a} is listed twice")));
            }
        }
        if self.dynamic_agents {
            for (field, code) in [
                ("login_code", &self.login_code),
                ("logout_code", &self.logout_code),
            ] {
                if !digits(code) {
                    v.push((field, "must be 1 to 20 digits".into()));
                } else if code == &self.number {
                    v.push((field, "must differ from the queue's number".into()));
                }
            }
            if !self.login_code.is_empty() && self.login_code == self.logout_code {
                v.push(("logout_code", "must differ from the login code".into()));
            }
        } else if self.agents.is_empty() {
            v.push((
                "agents",
                "list at least one extension, or allow agents to log in".into(),
            ));
        }
        if !(5..=300).contains(&self.ring_seconds) {
            v.push(("ring_seconds", "must be 5 to 300 seconds".into()));
        }
        if self.wrapup_seconds > 3600 {
            v.push(("wrapup_seconds", "must be 0 to 3600 seconds".into()));
        }
        if self.priority > 10 {
            v.push(("priority", "must be 0 to 10".into()));
        }
        for (field, secs) in [
            ("position_seconds", self.position_seconds),
            ("periodic_seconds", self.periodic_seconds),
        ] {
            if secs != 0 && !(15..=3600).contains(&secs) {
                v.push((field, "must be 0 (never) or 15 to 3600 seconds".into()));
            }
        }
        for (field, s) in [
            ("periodic_sound", &self.periodic_sound),
            ("agent_sound", &self.agent_sound),
        ] {
            if !s.is_empty() && !crate::valid_sound(s) {
                v.push((field, "must name a sound (letters, digits, - _ /)".into()));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_checked() {
        let mut ok = Queue::new("700", &["101", "102"]);
        ok.description = "Households".into();
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
        assert_eq!(ok.limit(), 999);
        assert_eq!(ok.numbers(), ["700"]);
        let wrong = |f: fn(&mut Queue), field: &str| {
            let mut q = ok.clone();
            f(&mut q);
            assert!(
                q.problems().iter().any(|(x, _)| *x == field),
                "{field}: {:?}",
                q.problems()
            );
        };
        wrong(|q| q.number = "7a".into(), "number");
        wrong(|q| q.max_callers = 1000, "max_callers");
        wrong(|q| q.max_wait_seconds = 5, "max_wait_seconds");
        wrong(|q| q.fallback = "700".into(), "fallback");
        wrong(|q| q.fallback = "hangup".into(), "fallback");
        wrong(|q| q.fallback = "12ab".into(), "fallback");
        wrong(|q| q.agents = vec![], "agents");
        wrong(|q| q.agents = vec!["101".into(), "101".into()], "agents");
        wrong(|q| q.ring_seconds = 2, "ring_seconds");
        wrong(|q| q.wrapup_seconds = 4000, "wrapup_seconds");
        wrong(|q| q.priority = 11, "priority");
        wrong(|q| q.position_seconds = 5, "position_seconds");
        wrong(|q| q.periodic_seconds = 9999, "periodic_seconds");
        wrong(|q| q.periodic_sound = "../x".into(), "periodic_sound");
        wrong(|q| q.description = "a\nb".into(), "description");
        wrong(
            |q| {
                q.dynamic_agents = true;
                q.login_code = "*45".into();
            },
            "login_code",
        );
        wrong(
            |q| {
                q.dynamic_agents = true;
                q.login_code = "45".into();
                q.logout_code = "45".into();
            },
            "logout_code",
        );
        let mut d = Queue::new("701", &[]);
        d.dynamic_agents = true;
        d.login_code = "7011".into();
        d.logout_code = "7012".into();
        assert!(d.problems().is_empty(), "{:?}", d.problems());
        assert_eq!(d.numbers(), ["701", "7011", "7012"]);
        let q: Queue = serde_json::from_str(r#"{"number":"702","agents":["101"]}"#).unwrap();
        assert_eq!(q.strategy, QueueStrategy::RingAll);
        assert_eq!(q.ring_seconds, 20);
        let q: Queue =
            serde_json::from_str(r#"{"number":"702","agents":["101"],"strategy":"round_robin"}"#)
                .unwrap();
        assert_eq!(q.strategy, QueueStrategy::RoundRobin);
        assert!(serde_json::from_str::<Queue>(r#"{"number":"702","queue":1}"#).is_err());
        assert!(serde_json::from_str::<Queue>(r#"{"number":"702","strategy":"x"}"#).is_err());
    }

    #[test]
    fn a_queue_fits_the_dial_plan() {
        let mut c = crate::Config::default();
        for n in ["101", "102"] {
            c.extensions.push(crate::Extension::new(n));
        }
        let mut q = Queue::new("700", &["101", "102"]);
        q.dynamic_agents = true;
        q.login_code = "7001".into();
        q.logout_code = "7002".into();
        q.fallback = "voicemail:101".into();
        c.queues.push(q.clone());
        let fields = |c: &crate::Config| -> Vec<String> {
            match c.validate() {
                Ok(()) => Vec::new(),
                Err(e) => {
                    e.0.iter()
                        .map(|f| format!("{} {}", f.entity, f.field))
                        .collect()
                }
            }
        };
        // 101 has no voicemail box by default.
        c.extensions[0].voicemail = true;
        assert!(fields(&c).is_empty(), "{:?}", fields(&c));
        let mut bad = c.clone();
        bad.queues[0].agents.push("109".into());
        bad.queues[0].music = "nothing".into();
        bad.queues[0].login_code = "102".into();
        bad.extensions[0].voicemail = false;
        let f = fields(&bad);
        for want in [
            "queue 700 agents",
            "queue 700 music",
            "queue 700 login_code",
            "queue 700 fallback",
        ] {
            assert!(f.iter().any(|x| x == want), "{want}: {f:?}");
        }
        let mut two = c.clone();
        let mut other = q.clone();
        other.number = "701".into();
        two.queues.push(other);
        assert!(fields(&two).iter().any(|x| x == "queue 701 login_code"));
    }
}
