//! One connection to the database: connecting (with the session settings
//! and prepared statements), driving it, and telling a lost connection from
//! an error the server answered with.

use std::future::poll_fn;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::sql::Statements;
use super::PgOptions;

/// An error of the database or of the connection to it.
#[derive(Debug)]
pub(super) struct DbErr {
    pub(super) message: String,
    /// The connection is gone (or its state unknown): a transaction on it
    /// has ended, committed or not.
    pub(super) lost: bool,
}

impl DbErr {
    pub(super) fn lost(message: impl Into<String>) -> DbErr {
        DbErr {
            message: message.into(),
            lost: true,
        }
    }
}

impl From<tokio_postgres::Error> for DbErr {
    fn from(e: tokio_postgres::Error) -> DbErr {
        let class = e.code().map(|c| c.code().to_owned());
        // 08: connection exception; 57P: the server ended the session
        // (pg_terminate_backend, a shutdown). No code: not an answer from
        // the server (an I/O error, a closed connection).
        let lost = e.is_closed()
            || class
                .as_deref()
                .is_none_or(|c| c.starts_with("08") || c.starts_with("57P"));
        DbErr {
            message: describe(&e),
            lost,
        }
    }
}

/// What the server said, or what went wrong on the way to it.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let hint = if db.code().code() == "55P03" {
            " (lock_timeout: another transaction held the log's head too long)"
        } else {
            ""
        };
        return format!(
            "{} {} (SQLSTATE {}){hint}",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// A live connection: its client, statements and the task driving it.
pub(super) struct Live {
    pub(super) client: Client,
    pub(super) statements: Statements,
    driver: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Closes the socket now: the server ends the session (and rolls
        // back an open transaction) at once.
        self.driver.abort();
    }
}

/// A connection without prepared statements.
pub(super) struct Bare {
    pub(super) client: Client,
    driver: JoinHandle<()>,
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A connection that reconnects on demand.
pub(super) struct Conn {
    options: Arc<PgOptions>,
    config: Config,
    live: Option<Live>,
}

impl Conn {
    pub(super) fn new(options: Arc<PgOptions>, config: Config) -> Conn {
        Conn {
            options,
            config,
            live: None,
        }
    }

    /// The live connection, if it is still open.
    pub(super) fn current(&mut self) -> Option<&Live> {
        if self.live.as_ref().is_some_and(|l| l.client.is_closed()) {
            self.live = None;
        }
        self.live.as_ref()
    }

    /// The live connection, connecting first if there is none.
    /// Notifications, if `notes` is given, are sent there as positions.
    pub(super) async fn live(
        &mut self,
        notes: Option<UnboundedSender<u64>>,
    ) -> Result<&Live, DbErr> {
        if self.current().is_none() {
            self.live = Some(self.connect(notes).await?);
        }
        self.live
            .as_ref()
            .ok_or_else(|| DbErr::lost("not connected"))
    }

    /// Drops the connection (the next use reconnects).
    pub(super) fn close(&mut self) {
        self.live = None;
    }

    /// A connection with no statements prepared (for creating the tables
    /// they need), closed when dropped.
    pub(super) async fn bare(&self) -> Result<Bare, DbErr> {
        let timeout = self.options.connect_timeout;
        let (client, connection) = tokio::time::timeout(timeout, self.config.connect(NoTls))
            .await
            .map_err(|_| DbErr::lost(format!("no answer within {timeout:?}")))??;
        let driver = tokio::spawn(drive(connection, None));
        Ok(Bare { client, driver })
    }

    async fn connect(&self, notes: Option<UnboundedSender<u64>>) -> Result<Live, DbErr> {
        let timeout = self.options.connect_timeout;
        let (client, connection) = tokio::time::timeout(timeout, self.config.connect(NoTls))
            .await
            .map_err(|_| DbErr::lost(format!("no answer within {timeout:?}")))??;
        let driver = tokio::spawn(drive(connection, notes));
        let settings = format!(
            "SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}; SET application_name = 'rwlog:{}'",
            self.options.lock_timeout.as_millis().max(1),
            self.options.idle_timeout.as_millis().max(1),
            self.options.schema,
        );
        let live = Live {
            statements: {
                client.batch_execute(&settings).await?;
                Statements::prepare(&client, &self.options.schema).await?
            },
            client,
            driver,
        };
        Ok(live)
    }
}

/// Drives a connection until it closes, passing notifications on.
async fn drive(
    mut connection: tokio_postgres::Connection<
        tokio_postgres::Socket,
        tokio_postgres::tls::NoTlsStream,
    >,
    notes: Option<UnboundedSender<u64>>,
) {
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                if let (Some(tx), Ok(head)) = (&notes, n.payload().parse::<u64>()) {
                    let _ = tx.send(head);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %e, "a connection to the shared log closed");
                return;
            }
            None => return,
        }
    }
}
