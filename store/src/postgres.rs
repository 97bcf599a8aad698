//! The PostgreSQL engine: a pool of connections for statements, and one more connection that
//! `LISTEN`s for the notices of every host's writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

use crate::{Error, Migration, Notice, Outcome, Row, Statement, Value};

/// The channel every host's notices go through; the payload is `topic \t key`.
const CHANNEL: &str = "fgs_changes";
/// Connections per host for statements.
const POOL_SIZE: usize = 16;
/// Notices a subscriber may fall behind by before it is told to read everything again.
const NOTICE_BACKLOG: usize = 1024;
/// Serializes the migrations of hosts starting together (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x6667_735f_6d69_6772; // "fgs_migr"

pub(crate) struct Postgres {
    pool: Pool,
    config: tokio_postgres::Config,
    notices: broadcast::Sender<Notice>,
    listening: AtomicBool,
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            Error::Conflict
        } else {
            Error::Postgres(e)
        }
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => e.into(),
        other => Error::Pool(other.to_string()),
    }
}

/// A value bound as the type PostgreSQL inferred for its placeholder.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Real(v) => match *ty {
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(v) => v.as_str().to_sql(ty, out),
            Value::Blob(v) => v.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn row(r: &tokio_postgres::Row) -> Result<Row, Error> {
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)?
                .map(|v| Value::Real(v.into())),
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            _ => r.try_get::<_, Option<String>>(i)?.map(Value::Text),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

async fn run_one(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &Statement,
) -> Result<Outcome, Error> {
    let prepared = tx.prepare_cached(&statement.sql).await?;
    let bound = params(&statement.params);
    if statement.returns_rows {
        let rows = tx
            .query(&prepared, &bound)
            .await?
            .iter()
            .map(row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outcome {
            changed: rows.len() as u64,
            rows,
        })
    } else {
        Ok(Outcome {
            changed: tx.execute(&prepared, &bound).await?,
            rows: Vec::new(),
        })
    }
}

/// Runs `statements` in order on one transaction, pipelined: each is sent without waiting for
/// the answer to the one before (a group commit of a thousand inserts is not a thousand round
/// trips). The first statement to fail is the error: the server answers in order, and aborts
/// the rest of the transaction.
async fn pipeline(
    tx: &deadpool_postgres::Transaction<'_>,
    statements: &[Statement],
) -> Result<Vec<Outcome>, Error> {
    futures_util::future::try_join_all(statements.iter().map(|s| run_one(tx, s))).await
}

impl Postgres {
    pub(crate) async fn connect(url: &str) -> Result<Self, Error> {
        let mut config: tokio_postgres::Config = url.parse()?;
        // A host whose database went away silently learns it within a minute.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(10));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        // Fail at start, not at the first request.
        drop(pool.get().await.map_err(pool_error)?);
        Ok(Postgres {
            pool,
            config,
            notices: broadcast::channel(NOTICE_BACKLOG).0,
            listening: AtomicBool::new(false),
        })
    }

    pub(crate) async fn write(
        &self,
        statements: Vec<Statement>,
        notice: Option<(String, String)>,
    ) -> Result<Vec<Outcome>, Error> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await?;
        let outcomes = pipeline(&tx, &statements).await?;
        if let Some((topic, key)) = notice {
            // Delivered to every listener when (and only if) the transaction commits.
            let payload = format!("{topic}\t{key}");
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    pub(crate) async fn read(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, Error> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let outcomes = pipeline(&tx, &statements).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    pub(crate) async fn migrate(
        &self,
        store: &'static str,
        migrations: &'static [Migration],
    ) -> Result<(), Error> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(crate::migrate::POSTGRES_TABLE).await?;
        let applied: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM fgs_migrations WHERE store = $1",
                &[&store],
            )
            .await?
            .get(0);
        for migration in crate::migrate::pending(store, migrations, applied)? {
            if !migration.postgres.is_empty() {
                tx.batch_execute(migration.postgres).await?;
            }
            tx.execute(
                "INSERT INTO fgs_migrations (store, version, name, applied_ms) VALUES ($1, $2, $3, $4)",
                &[&store, &migration.version, &migration.name, &crate::migrate::now_ms()],
            )
            .await?;
            tracing::info!(
                store,
                version = migration.version,
                name = migration.name,
                "schema migrated"
            );
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let receiver = self.notices.subscribe();
        if !self.listening.swap(true, Ordering::SeqCst) {
            tokio::spawn(listen(self.config.clone(), self.notices.clone()));
        }
        receiver
    }
}

/// Listens for notices for as long as the host runs, connecting again when the connection is
/// lost. Every time listening (re)starts, subscribers are told to `Resync`: what changed while
/// no one listened (or before the first `LISTEN`) is only in the tables.
async fn listen(config: tokio_postgres::Config, notices: broadcast::Sender<Notice>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let statement = format!("LISTEN {CHANNEL}");
                let listen = client.batch_execute(&statement);
                tokio::pin!(listen);
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let mut listening = false;
                loop {
                    tokio::select! {
                        started = &mut listen, if !listening => match started {
                            Ok(()) => {
                                listening = true;
                                let _ = notices.send(Notice::Resync);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot listen for the store's notices");
                                break;
                            }
                        },
                        message = messages.next() => match message {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if let Some((topic, key)) = n.payload().split_once('\t') {
                                    let _ = notices.send(Notice::Changed {
                                        topic: topic.to_string(),
                                        key: key.to_string(),
                                    });
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "lost the store's notice connection");
                                break;
                            }
                            None => break,
                        },
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for the store's notices")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
