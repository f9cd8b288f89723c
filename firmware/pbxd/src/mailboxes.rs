//! The voicemail boxes on the card, for the exchange: read at start and whenever one
//! changes (a message recorded, the voicemail menu's work, a deletion in the portal),
//! and the voicemail menu's requests carried out.

use pbx::{Pbx, Request};
use std::path::Path;
use store::voicemail;

/// Hands the exchange what every extension's box holds, and removes greetings
/// recorded on a phone and never kept (the daemon stopped before their caller chose).
pub fn load_all(core: &mut Pbx, root: &Path, cfg: &config::Config) {
    for e in &cfg.extensions {
        if !voicemail::valid_box(&e.number) {
            continue;
        }
        let dir = voicemail::box_dir(root, &e.number);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for f in rd.filter_map(Result::ok) {
                let _ = voicemail::discard_new_greeting(&f.path());
            }
        }
        rescan(core, root, &e.number);
    }
}

/// Reads box `ext` again and hands it to the exchange.
pub fn rescan(core: &mut Pbx, root: &Path, ext: &str) {
    if voicemail::valid_box(ext) {
        core.set_mailbox(ext, voicemail::scan(&voicemail::box_dir(root, ext)));
    }
}

/// The box a file of the voicemail folder belongs to.
pub fn box_of(root: &Path, file: &Path) -> Option<String> {
    let dir = file.parent()?;
    (dir.parent()? == root)
        .then(|| dir.file_name()?.to_str().map(str::to_string))
        .flatten()
        .filter(|b| voicemail::valid_box(b))
}

/// Carries out the exchange's requests. A new service PIN goes through the
/// configuration like any other change (validated, logged, published).
pub fn serve(core: &mut Pbx, root: &Path, cfg: &std::sync::Arc<store::Configurator>) {
    while let Some(r) = core.poll_request() {
        let (ext, result) = match &r {
            Request::MarkHeard { ext, id } => (
                ext.clone(),
                voicemail::mark_heard(&voicemail::box_dir(root, ext), id),
            ),
            Request::DeleteMessage { ext, id } => (
                ext.clone(),
                voicemail::delete(&voicemail::box_dir(root, ext), id),
            ),
            Request::InstallGreeting {
                ext,
                recorded,
                file,
            } => (
                ext.clone(),
                voicemail::install_greeting(&voicemail::box_dir(root, ext), recorded, file),
            ),
            Request::RemoveGreeting { ext, file } => {
                let path = voicemail::box_dir(root, ext).join(file);
                let r = match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                };
                (ext.clone(), r)
            }
            Request::DiscardRecording { path } => match box_of(root, path) {
                Some(ext) => (ext, voicemail::discard_new_greeting(path)),
                None => continue,
            },
            // Counted by the exchange itself; never handed out.
            Request::PinFailed { .. } | Request::PinOk { .. } => continue,
            Request::MergeRecording {
                caller,
                agent,
                out,
                keep_bytes,
            } => {
                let (caller, agent, out, keep) =
                    (caller.clone(), agent.clone(), out.clone(), *keep_bytes);
                // Reads and writes the whole call: not on the exchange's loop.
                tokio::task::spawn_blocking(move || {
                    crate::recordings::finish(caller, agent, out, keep)
                });
                continue;
            }
            Request::DoNotDisturb { ext, on } => {
                let (on, state) = (*on, if *on { "on" } else { "off" });
                let what = format!("do not disturb of extension {ext} turned {state} by phone");
                change_by_phone(cfg, ext, what, move |e| e.do_not_disturb = on);
                continue;
            }
            Request::ServicePin { ext, pin } => {
                let pin = pin.clone();
                let what = format!("service PIN of extension {ext} changed by phone");
                change_by_phone(cfg, ext, what, move |e| e.service_pin = pin);
                continue;
            }
        };
        if let Err(e) = result {
            tracing::warn!(extension = ext, "voicemail: {r:?} failed: {e}");
        }
        rescan(core, root, &ext);
    }
}

/// Changes extension `ext` as its phone asked (`what` goes to the change log and the
/// log), off the exchange's loop: committing waits for the card.
fn change_by_phone(
    cfg: &std::sync::Arc<store::Configurator>,
    ext: &str,
    what: String,
    edit: impl FnOnce(&mut config::Extension) + Send + 'static,
) {
    let (cfg, ext) = (cfg.clone(), ext.to_string());
    tokio::task::spawn_blocking(move || {
        let r = cfg.change(&ext, &what, crate::unix_now(), |c| {
            match c.extensions.iter_mut().find(|e| e.number == ext) {
                Some(e) => {
                    edit(e);
                    Ok(())
                }
                None => Err(store::ChangeError::NotFound(format!("extension {ext}"))),
            }
        });
        match r {
            Ok(_) => tracing::info!(extension = ext, "{what}"),
            Err(e) => tracing::warn!(extension = ext, "not done: {what}: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_of_a_box_name_their_box() {
        let root = Path::new("/data/voicemail");
        assert_eq!(
            box_of(root, Path::new("/data/voicemail/102/greeting-new-3.wav")).as_deref(),
            Some("102")
        );
        assert_eq!(box_of(root, Path::new("/data/voicemail/x/a.wav")), None);
        assert_eq!(box_of(root, Path::new("/data/other/102/a.wav")), None);
        assert_eq!(
            box_of(root, Path::new("/data/voicemail/102/sub/a.wav")),
            None
        );
    }
}
