//! Ctrl-C during a run: one listener for the whole run, installed before the first
//! repetition, that any stage (a repetition, a server starting) can wait on.

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether Ctrl-C has arrived, and a way to wait for it.
pub(super) struct Interrupt {
    rx: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Interrupt {
    /// Installs the listener. tokio installs its signal handler on the first poll of
    /// `ctrl_c()`, so that poll happens here, not in a task that may run later: a signal in
    /// between would otherwise hit the default handler (or, once tokio's handler exists, be
    /// remembered by nobody).
    pub(super) fn install() -> Self {
        let mut signal = Box::pin(tokio::signal::ctrl_c());
        let fired = signal.as_mut().now_or_never().is_some();
        let (tx, rx) = watch::channel(fired);
        let task = tokio::spawn(async move {
            if signal.await.is_ok() {
                let _ = tx.send(true);
            }
        });
        Interrupt { rx, task }
    }

    /// True once Ctrl-C has arrived.
    pub(super) fn fired(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when Ctrl-C arrives (at once if it already has).
    pub(super) fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            if rx.wait_for(|fired| *fired).await.is_err() {
                // The listener is gone (the run is over): never resolve.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.task.abort();
    }
}
