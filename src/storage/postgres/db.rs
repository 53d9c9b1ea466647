//! rwlog's database thread: a tokio runtime of its own, so that no call of
//! rwlog's ever runs a runtime inside a caller's. Two connections live on
//! it: the appender's (batches, under the head's lock) and the tailer's
//! (LISTEN, the head, catching up). The sequencer and readers reach them
//! through channels and wait on a reply.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_postgres::Config;

use super::appender::Appender;
use super::tailer::Tailer;
use super::wire::{AppendReq, DbState, ReadReq, Reply};
use super::PgOptions;
use crate::storage::store::Rejection;

/// The database thread and the ways to it.
pub(super) struct Db {
    append: Option<UnboundedSender<AppendReq>>,
    read: Option<UnboundedSender<ReadReq>>,
    pub(super) state: Arc<DbState>,
    thread: Option<JoinHandle<()>>,
}

const GONE: &str = "rwlog's database thread has ended";

impl Db {
    pub(super) fn start(options: Arc<PgOptions>, config: Config) -> std::io::Result<Db> {
        let (append, appends) = unbounded_channel();
        let (read, reads) = unbounded_channel();
        let state = Arc::new(DbState::default());
        let tail_state = Arc::clone(&state);
        let append_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("rwlog-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!(error = %e, "rwlog's database thread could not start a runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let appender =
                        Appender::new(Arc::clone(&options), config.clone(), append_state);
                    let tailer = Tailer::new(options, config, tail_state);
                    tokio::join!(appender.run(appends), tailer.run(reads));
                });
            })?;
        Ok(Db {
            append: Some(append),
            read: Some(read),
            state,
            thread: Some(thread),
        })
    }

    /// Sends a request to the appender connection and waits for its reply.
    pub(super) fn append<T, F: From<&'static str>>(
        &self,
        request: impl FnOnce(Reply<T, F>) -> AppendReq,
    ) -> Result<T, F> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let sent = self.append.as_ref().map(|a| a.send(request(tx)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(F::from(GONE));
        }
        rx.recv().unwrap_or_else(|_| Err(F::from(GONE)))
    }

    /// Sends a request that wants no reply to the appender connection.
    pub(super) fn tell(&self, request: AppendReq) {
        if let Some(a) = &self.append {
            let _ = a.send(request);
        }
    }

    /// Sends a request to the tailer connection; its reply goes where the
    /// request says.
    pub(super) fn read_async(&self, request: ReadReq) {
        if let Some(r) = &self.read {
            let _ = r.send(request);
        }
    }

    /// Sends a request to the tailer connection and waits for its reply.
    pub(super) fn read<T>(
        &self,
        request: impl FnOnce(Reply<T, String>) -> ReadReq,
    ) -> Result<T, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let sent = self.read.as_ref().map(|r| r.send(request(tx)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(GONE.into());
        }
        rx.recv().unwrap_or_else(|_| Err(GONE.into()))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Closing both channels ends both connections' tasks, and with them
        // the runtime and the thread.
        self.append = None;
        self.read = None;
        if let Some(thread) = self.thread.take() {
            // The last handle can be dropped on the thread itself (by a
            // wake-up that held the runtime last): it ends on its own.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl From<&'static str> for Rejection {
    fn from(why: &'static str) -> Rejection {
        Rejection::NotWritten(why.into())
    }
}
