//! Watches the config files and asks for a reload when one of them changes.
//!
//! Directories are watched, not files: editors that save by writing a new file and
//! renaming it over the old one (vim, many others) replace the inode a file watch would
//! follow, and ConfigMap-style symlink swaps do the same. Events are filtered to the main
//! file and the include globs, then debounced so one save (several events) is one reload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::Config;

/// Quiet time after the last event before reloading.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(300);

/// What decides whether a changed path belongs to the config.
#[derive(Debug, Clone)]
struct Interest {
    main_file: PathBuf,
    patterns: Vec<glob::Pattern>,
}

impl Interest {
    fn new(config: &Config) -> Self {
        let patterns = config
            .include_patterns
            .iter()
            .filter_map(|pattern| glob::Pattern::new(&absolute(pattern).to_string_lossy()).ok())
            .collect();
        Interest {
            main_file: absolute(&config.main_file),
            patterns,
        }
    }

    fn concerns(&self, path: &Path) -> bool {
        let path = absolute(path);
        path == self.main_file || self.patterns.iter().any(|p| p.matches_path(&path))
    }

    /// The directories to watch: the main file's, and the fixed prefix of each glob.
    fn directories(&self) -> BTreeSet<(PathBuf, RecursiveMode)> {
        let mut directories = BTreeSet::new();
        if let Some(parent) = self.main_file.parent() {
            directories.insert((parent.to_path_buf(), RecursiveMode::NonRecursive));
        }
        for pattern in &self.patterns {
            let text = pattern.as_str();
            let fixed: PathBuf = Path::new(text)
                .components()
                .take_while(|part| !part.as_os_str().to_string_lossy().contains(['*', '?', '[']))
                .collect();
            let directory = if fixed.as_os_str() == text {
                fixed.parent().map(Path::to_path_buf).unwrap_or(fixed)
            } else {
                fixed
            };
            let mode = if text.contains("**") {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            directories.insert((directory, mode));
        }
        directories
    }
}

/// Makes a path absolute and resolves symlinks in its directory (not the file itself,
/// which may be replaced at any moment), so event paths and config paths compare equal.
fn absolute(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => match parent.canonicalize() {
            Ok(parent) => parent.join(name),
            Err(_) => absolute,
        },
        _ => absolute,
    }
}

/// A live watch; replace it with a new one when the include set changes.
pub(crate) struct ConfigWatch {
    _watcher: RecommendedWatcher,
}

/// Where watches report raw changes; one debounce behind it for the daemon's life.
///
/// A reload replaces the watch, and the old watcher's thread may still deliver the event
/// the new one also sees. Both feed this one channel, so the debounce merges them into one
/// reload; with a channel per watch, the old one closing mid-burst fired a second reload.
#[derive(Clone)]
pub(crate) struct Changes(mpsc::UnboundedSender<()>);

/// Starts the debounce: each burst of changes reported to the returned [`Changes`]
/// produces one message on `reloads`, [`DEBOUNCE`] after it ends.
pub(crate) fn debounced(reloads: mpsc::Sender<()>) -> Changes {
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    tokio::spawn(debounce(raw_rx, reloads));
    Changes(raw_tx)
}

/// Starts watching `config`'s files, reporting relevant changes to `changes`.
pub(crate) fn watch(config: &Config, changes: &Changes) -> notify::Result<ConfigWatch> {
    let interest = Interest::new(config);
    let raw_tx = changes.0.clone();
    let filter = interest.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
        ) && event.paths.iter().any(|path| filter.concerns(path));
        if relevant {
            let _ = raw_tx.send(());
        }
    })?;
    for (directory, mode) in interest.directories() {
        if let Err(error) = watcher.watch(&directory, mode) {
            // A missing include directory is not fatal: its glob matches nothing today.
            warn!("cannot watch {}: {error}", directory.display());
        }
    }
    Ok(ConfigWatch { _watcher: watcher })
}

async fn debounce(mut raw: mpsc::UnboundedReceiver<()>, reloads: mpsc::Sender<()>) {
    while raw.recv().await.is_some() {
        // Wait until no event arrived for DEBOUNCE.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, raw.recv()).await {}
        if reloads.send(()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload replaces the watch while the old watcher may still report the change the
    /// new one reports too: one reload, a full quiet period later, not one at once.
    #[tokio::test]
    async fn a_watch_replaced_mid_burst_does_not_fire_early_or_twice() {
        let (reloads_tx, mut reloads) = mpsc::channel(1);
        let changes = debounced(reloads_tx);
        let old_watch = changes.clone();
        let new_watch = changes.clone();
        old_watch.0.send(()).unwrap();
        new_watch.0.send(()).unwrap();
        drop(old_watch);

        tokio::time::sleep(DEBOUNCE / 2).await;
        assert!(
            reloads.try_recv().is_err(),
            "reloaded before the quiet period"
        );
        let first = tokio::time::timeout(Duration::from_secs(5), reloads.recv()).await;
        assert_eq!(first, Ok(Some(())));
        tokio::time::sleep(DEBOUNCE * 2).await;
        assert!(reloads.try_recv().is_err(), "one burst reloaded twice");
        drop(new_watch);
    }
}
