//! Following the other hosts of a shared database: every write of a function (its versions,
//! aliases, triggers) or of a project's dependency packages is followed by a notice, and each
//! host reads what changed again, so that no host serves stale code or configuration. A
//! function's new revision gets new instances by itself (instances are keyed by revision);
//! the instances of what was deleted elsewhere are retired here.
//!
//! The hosts also keep a membership table: the async requests of a host that stops renewing
//! its row are taken over by the others.
//!
//! Not followed yet (issue 19): the triggers' own consumers and timers (each host runs those
//! of the triggers it loaded at start or created itself) and reserved instances.

use std::sync::Arc;
use std::time::Duration;

use fgs_store::{params, Db, Migration, Notice, Statement};
use tokio::sync::broadcast;

use crate::api::App;
use crate::asynchronous::journal::NOTICE_CANCEL;
use crate::asynchronous::{dispatch, now_ms};
use crate::registry::{Change, Key};
use crate::store::StoreError;
use crate::store::{NOTICE_DEPENDENCIES, NOTICE_FUNCTION};

/// Applies the notices of every host's writes (this host's own included: reading a function
/// again after writing it is harmless) until the host stops.
pub async fn follow(app: Arc<App>, mut notices: broadcast::Receiver<Notice>) {
    loop {
        let notice = match notices.recv().await {
            Ok(notice) => notice,
            // Fell behind: what was missed is only in the tables.
            Err(broadcast::error::RecvError::Lagged(_)) => Notice::Resync,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let applied = match notice {
            Notice::Changed { topic, key } if topic == NOTICE_FUNCTION => {
                match serde_json::from_str::<Key>(&key) {
                    Ok(key) => app.registry.reload(&key).await.map(|c| vec![c]),
                    Err(e) => {
                        tracing::warn!(key, error = %e, "a function notice without a key");
                        continue;
                    }
                }
            }
            Notice::Changed { topic, .. } if topic == NOTICE_DEPENDENCIES => app
                .registry
                .reload_dependencies()
                .await
                .map(|()| Vec::new()),
            Notice::Changed { topic, key } if topic == NOTICE_CANCEL => {
                if let Some((func_id, request_id)) = key.split_once('\t') {
                    crate::api::async_invoke::cancel_here(&app, func_id, request_id);
                }
                continue;
            }
            Notice::Changed { .. } => continue,
            Notice::Resync => app.registry.resync().await,
        };
        match applied {
            Ok(changes) => changes
                .iter()
                .for_each(|change| retire_removed(&app, change)),
            Err(e) => tracing::error!(error = %e, "cannot read a change of another host"),
        }
    }
}

/// Retires the instances of the versions a change removed (a deleted function or version, or
/// one recreated under the same name, which has another id).
fn retire_removed(app: &App, change: &Change) {
    let Some(before) = &change.before else {
        return;
    };
    for entry in before.entries() {
        let kept = change
            .after
            .as_ref()
            .and_then(|after| after.version(&entry.record.version))
            .is_some_and(|now| now.id() == entry.id());
        if !kept {
            app.pool.retire(entry.id(), u64::MAX);
            app.statistics.forget([entry.id()]);
        }
    }
}

/// The hosts sharing a database: each renews its row every [`HEARTBEAT`]; one whose row has
/// not been renewed for [`EXPIRY_MS`] is taken for dead, and the survivors claim its unfinished
/// async requests.
static MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "hosts",
    sqlite: "CREATE TABLE IF NOT EXISTS fgs_hosts (
        host_id TEXT PRIMARY KEY, address TEXT NOT NULL, started_ms INTEGER NOT NULL, alive_until_ms INTEGER NOT NULL);",
    postgres: "CREATE TABLE fgs_hosts (
        host_id TEXT PRIMARY KEY, address TEXT NOT NULL, started_ms BIGINT NOT NULL, alive_until_ms BIGINT NOT NULL);",
}];

pub const HEARTBEAT: Duration = Duration::from_secs(2);
pub const EXPIRY_MS: i64 = 10_000;
/// Requests claimed from dead hosts per heartbeat, at most.
const CLAIM: i64 = 500;

/// This host's membership of the cluster.
pub struct Membership {
    db: Db,
    pub host: String,
    address: String,
    started_ms: i64,
}

impl Membership {
    pub async fn join(db: Db, host: String, address: String) -> Result<Self, StoreError> {
        db.migrate("hosts", MIGRATIONS).await?;
        let membership = Membership {
            db,
            host,
            address,
            started_ms: now_ms(),
        };
        membership.renew(now_ms() + EXPIRY_MS).await?;
        Ok(membership)
    }

    async fn renew(&self, alive_until_ms: i64) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO fgs_hosts (host_id, address, started_ms, alive_until_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (host_id) DO UPDATE SET address = excluded.address, alive_until_ms = excluded.alive_until_ms",
                params![&self.host, &self.address, self.started_ms, alive_until_ms],
            )
            .await?;
        Ok(())
    }

    /// Leaves at once (a graceful stop): the others take over without waiting for the expiry.
    pub async fn leave(&self) {
        if let Err(e) = self.renew(0).await {
            tracing::warn!(error = %e, "cannot leave the cluster");
        }
    }

    /// The hosts taken for dead.
    async fn dead(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT host_id FROM fgs_hosts WHERE alive_until_ms < $1 AND host_id <> $2",
                params![now_ms(), &self.host],
            )
            .await?;
        rows.iter().map(|r| Ok(r.get::<String>(0)?)).collect()
    }

    async fn forget(&self, hosts: &[String]) -> Result<(), StoreError> {
        let statements = hosts
            .iter()
            .map(|h| {
                Statement::execute(
                    "DELETE FROM fgs_hosts WHERE host_id = $1 AND alive_until_ms < $2",
                    params![h, now_ms()],
                )
            })
            .collect();
        self.db.write(statements, None).await?;
        Ok(())
    }
}

/// Renews this host's membership and takes over the async requests of dead hosts, for as
/// long as the host runs.
pub async fn keep_membership(app: Arc<App>, membership: Arc<Membership>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if let Err(e) = membership.renew(now_ms() + EXPIRY_MS).await {
            tracing::warn!(error = %e, "cannot renew the cluster membership");
            continue;
        }
        if let Err(e) = take_over(&app, &membership).await {
            tracing::warn!(error = %e, "cannot take over the requests of a dead host");
        }
    }
}

async fn take_over(app: &App, membership: &Membership) -> Result<(), StoreError> {
    let dead = membership.dead().await?;
    if dead.is_empty() {
        return Ok(());
    }
    let claimed = app.journal.claim(&dead, CLAIM).await?;
    let n = claimed.len();
    for request in claimed {
        app.queue.push(dispatch::job_of(request));
    }
    if n > 0 {
        tracing::info!(requests = n, hosts = ?dead, "took over the async requests of hosts that stopped");
    }
    if (n as i64) < CLAIM {
        // Nothing of theirs is left unclaimed (or another survivor holds it).
        membership.forget(&dead).await?;
    }
    Ok(())
}
