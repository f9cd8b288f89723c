//! Music on hold collections put in force: the shipped one (`system`), the configured
//! ones (uploaded files in `<data>/music`, loaded on a blocking thread and handed to
//! the relay's driver), and live ones (a capture thread per ALSA line-in device).

use config::{Config, MusicCollection};
use media::{Clip, Live, Music};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// At most this much of the shipped collection is held in memory (µ-law, 3 minutes:
/// 1.4 MB).
pub const SYSTEM_CAP: usize = 3 * 60 * 8000;

/// At most this much of a configured collection (10 minutes: 4.8 MB).
pub const COLLECTION_CAP: usize = 10 * 60 * 8000;

/// A collection loaded (with the generation it was loaded for), or taken out (`None`).
pub type Loaded = (String, u64, Option<Music>);

/// The collections in force and what they were made from.
pub struct Collections {
    dir: PathBuf,
    /// What each collection in force is made from (files with their sizes and times,
    /// or the line-in device), and the generation of its latest load: loads run in
    /// parallel, so only the latest one's result is installed.
    made_from: HashMap<String, (String, u64)>,
    generation: u64,
    lines: HashMap<String, LineThread>,
    tx: mpsc::UnboundedSender<Loaded>,
}

struct LineThread {
    live: Arc<Live>,
    stop: Arc<AtomicBool>,
}

impl Drop for LineThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The shipped collection: the files of `dir` in name order, or a chime.
pub fn system(dir: &Path) -> Music {
    match Clip::collection(dir, SYSTEM_CAP) {
        Ok(c) => {
            tracing::info!(folder = %dir.display(), seconds = c.len() / 8000, "music on hold");
            Music::Clip(c)
        }
        Err(e) => {
            tracing::warn!(folder = %dir.display(), "no music on hold ({e}): a chime is played");
            Music::chime()
        }
    }
}

impl Collections {
    /// Collections of files uploaded to `dir`; what is loaded goes to `tx`.
    pub fn new(dir: PathBuf, tx: mpsc::UnboundedSender<Loaded>) -> Collections {
        Collections {
            dir,
            made_from: HashMap::new(),
            generation: 0,
            lines: HashMap::new(),
            tx,
        }
    }

    /// Brings the installed collections in line with `cfg` and the files on the card:
    /// new or changed ones are loaded, removed ones taken out.
    pub fn reconcile(&mut self, cfg: &Config) {
        let mut keep = HashMap::new();
        for m in &cfg.music {
            let from = self.fingerprint(m);
            let gen = match self.made_from.get(&m.name) {
                Some((f, g)) if *f == from => *g,
                _ => {
                    self.generation += 1;
                    self.load(m, self.generation);
                    self.generation
                }
            };
            keep.insert(m.name.clone(), (from, gen));
        }
        for gone in self.made_from.keys().filter(|n| !keep.contains_key(*n)) {
            let _ = self.tx.send((gone.clone(), 0, None));
        }
        self.made_from = keep;
        let devices: Vec<&str> = cfg.music.iter().map(|m| m.line_in.as_str()).collect();
        self.lines.retain(|d, _| devices.contains(&d.as_str()));
    }

    /// Whether a load's result (or a removal, `loaded` false) is still what the
    /// configuration says: a load overtaken by a later one, or by the collection's
    /// removal, is dropped.
    pub fn current(&self, name: &str, gen: u64, loaded: bool) -> bool {
        match self.made_from.get(name) {
            Some((_, g)) => loaded && *g == gen,
            None => !loaded,
        }
    }

    fn fingerprint(&self, m: &MusicCollection) -> String {
        if !m.line_in.is_empty() {
            return format!("line-in {}", m.line_in);
        }
        let mut s = String::new();
        for f in &m.files {
            let meta = std::fs::metadata(self.dir.join(format!("{f}.wav")));
            let (len, t) = meta.map_or((0, None), |m| (m.len(), m.modified().ok()));
            s.push_str(&format!("{f} {len} {t:?};"));
        }
        s
    }

    fn load(&mut self, m: &MusicCollection, gen: u64) {
        let name = m.name.clone();
        if !m.line_in.is_empty() {
            let live = self
                .lines
                .entry(m.line_in.clone())
                .or_insert_with(|| LineThread::start(&m.line_in))
                .live
                .clone();
            let _ = self.tx.send((name, gen, Some(Music::Live(live))));
            return;
        }
        let paths: Vec<PathBuf> = m
            .files
            .iter()
            .map(|f| self.dir.join(format!("{f}.wav")))
            .collect();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let _ = tx.send((name.clone(), gen, Some(load_files(&name, &paths))));
        });
    }
}

/// The files one after the other, up to [`COLLECTION_CAP`]; a file that cannot be
/// played is left out (and said so); nothing playable at all: a chime.
fn load_files(name: &str, paths: &[PathBuf]) -> Music {
    let mut all: Vec<u8> = Vec::new();
    for p in paths {
        match Clip::load(p) {
            Ok(c) => {
                let room = COLLECTION_CAP - all.len();
                all.extend_from_slice(&c.samples()[..c.len().min(room)]);
                if all.len() == COLLECTION_CAP {
                    tracing::warn!(
                        collection = name,
                        "longer than 10 minutes: the rest is not played"
                    );
                    break;
                }
            }
            Err(e) => tracing::warn!(collection = name, file = %p.display(), "not played: {e}"),
        }
    }
    if all.is_empty() {
        tracing::warn!(collection = name, "nothing playable: a chime is played");
        return Music::chime();
    }
    tracing::info!(
        collection = name,
        seconds = all.len() / 8000,
        "music on hold collection"
    );
    Music::Clip(Clip::from_ulaw(all))
}

impl LineThread {
    /// Captures `device` on a thread of its own into a live source; a device that
    /// cannot be opened (unplugged, busy) is tried again every five seconds, and its
    /// listeners hear silence meanwhile.
    fn start(device: &str) -> LineThread {
        let live = Live::new();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s, d) = (live.clone(), stop.clone(), device.to_string());
        let spawned = std::thread::Builder::new()
            .name("pbx-line-in".into())
            .spawn(move || capture(&d, &l, &s));
        if let Err(e) = spawned {
            tracing::error!(device, "line-in thread: {e}");
        }
        LineThread { live, stop }
    }
}

fn capture(device: &str, live: &Live, stop: &AtomicBool) {
    let frame = Duration::from_millis(20);
    let mut warned = false;
    while !stop.load(Ordering::Relaxed) {
        let mut line = match board::audio::LineIn::open(device) {
            Ok(l) => l,
            Err(e) => {
                if !warned {
                    tracing::warn!("music on hold: {e} (tried again every 5 s)");
                    warned = true;
                }
                for _ in 0..20 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                continue;
            }
        };
        tracing::info!(device, "music on hold from the line-in");
        warned = false;
        let mut pcm = [0i16; board::audio::FRAME];
        let mut start = Instant::now();
        let mut n: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = line.read_frame(&mut pcm) {
                tracing::warn!("music on hold: {e} (opened again)");
                break;
            }
            live.push(&pcm);
            n += 1;
            // A sound card delivers in real time; a device that delivers faster (a
            // file, ALSA's null) is held to it. Drift under 40 ms is left alone.
            let due = start + frame * n;
            let now = Instant::now();
            if due > now + 2 * frame {
                std::thread::sleep(due - now);
            } else if now > due + 10 * frame || n > 1_000_000 {
                (start, n) = (now, 0);
            }
        }
        // Closed before the pause: a collection moved to another device and back finds
        // it free.
        drop(line);
        std::thread::sleep(Duration::from_millis(250));
    }
}
