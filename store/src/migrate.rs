//! Versioned schema migrations, one sequence per store, recorded in `fgs_migrations`.

use crate::Error;

/// One step of a store's schema, written for each engine. Versions start at 1 and follow each
/// other; a step an engine does not need (a table only a shared database has) is empty.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub(crate) const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS fgs_migrations (
    store      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    applied_ms INTEGER NOT NULL,
    PRIMARY KEY (store, version)
);";

pub(crate) const POSTGRES_TABLE: &str = "CREATE TABLE IF NOT EXISTS fgs_migrations (
    store      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    name       TEXT NOT NULL,
    applied_ms BIGINT NOT NULL,
    PRIMARY KEY (store, version)
);";

/// The migrations after version `applied`, in order; refused when the database is newer than
/// every migration this fgs has, or the list is out of order (a bug).
pub(crate) fn pending(
    store: &str,
    migrations: &'static [Migration],
    applied: i64,
) -> Result<impl Iterator<Item = &'static Migration>, Error> {
    if migrations
        .iter()
        .enumerate()
        .any(|(i, m)| m.version != i as i64 + 1)
    {
        return Err(Error::Schema(format!(
            "{store}: migrations are not numbered 1, 2, ..."
        )));
    }
    let known = migrations.len() as i64;
    if applied > known {
        return Err(Error::Schema(format!(
            "the {store} schema is at version {applied}, newer than this fgs knows ({known}): \
             a newer release wrote it"
        )));
    }
    Ok(migrations.iter().skip(applied as usize))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{params, Db};

    static STEPS: &[Migration] = &[
        Migration {
            version: 1,
            name: "things",
            sqlite: "CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY, n INTEGER NOT NULL);",
            postgres: "",
        },
        Migration {
            version: 2,
            name: "things get a note",
            sqlite: "ALTER TABLE things ADD COLUMN note TEXT;",
            postgres: "",
        },
    ];

    #[tokio::test]
    async fn a_schema_migrates_once_from_empty_and_from_an_older_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        // An older release: only version 1, with a row in it.
        let db = Db::open(&crate::StoreUrl::Sqlite(path.clone()))
            .await
            .unwrap();
        db.migrate("things", &STEPS[..1]).await.unwrap();
        db.execute(
            "INSERT INTO things (id, n) VALUES ($1, $2)",
            params!["a", 1i64],
        )
        .await
        .unwrap();
        drop(db);
        // This release: version 2 is applied, version 1 not again, the row kept.
        let db = Db::open(&crate::StoreUrl::Sqlite(path.clone()))
            .await
            .unwrap();
        db.migrate("things", STEPS).await.unwrap();
        db.migrate("things", STEPS).await.unwrap();
        db.execute(
            "UPDATE things SET note = $2 WHERE id = $1",
            params!["a", "kept"],
        )
        .await
        .unwrap();
        let rows = db
            .query("SELECT n, note FROM things", Vec::new())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<i64>(0).unwrap(), 1);
        assert_eq!(rows[0].get::<String>(1).unwrap(), "kept");
        let versions = db
            .query(
                "SELECT version FROM fgs_migrations WHERE store = $1 ORDER BY version",
                params!["things"],
            )
            .await
            .unwrap();
        assert_eq!(versions.len(), 2);
        // An older release refuses the newer schema.
        let err = db.migrate("things", &STEPS[..1]).await.unwrap_err();
        assert!(
            err.to_string().contains("newer than this fgs knows"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_taken_key_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&crate::StoreUrl::Sqlite(dir.path().join("s.sqlite3")))
            .await
            .unwrap();
        db.migrate("things", STEPS).await.unwrap();
        let insert = "INSERT INTO things (id, n) VALUES ($1, $2)";
        db.execute(insert, params!["a", 1i64]).await.unwrap();
        assert!(matches!(
            db.execute(insert, params!["a", 2i64]).await,
            Err(Error::Conflict)
        ));
    }

    #[tokio::test]
    async fn a_write_is_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&crate::StoreUrl::Sqlite(dir.path().join("s.sqlite3")))
            .await
            .unwrap();
        db.migrate("things", STEPS).await.unwrap();
        let insert = |id: &str, n: i64| {
            crate::Statement::execute("INSERT INTO things (id, n) VALUES ($1, $2)", params![id, n])
        };
        db.write(vec![insert("a", 1)], None).await.unwrap();
        // The second statement conflicts: the first is not kept either.
        let failed = db.write(vec![insert("b", 2), insert("a", 3)], None).await;
        assert!(matches!(failed, Err(Error::Conflict)));
        let rows = db
            .read(vec![
                crate::Statement::query("SELECT id, n FROM things ORDER BY id", Vec::new()),
                crate::Statement::query("SELECT count(*) FROM things WHERE n > $1", params![0i64]),
            ])
            .await
            .unwrap();
        assert_eq!(rows[0].rows.len(), 1);
        assert_eq!(rows[0].rows[0].get::<String>(0).unwrap(), "a");
        assert_eq!(rows[1].rows[0].get::<i64>(0).unwrap(), 1);
    }
}
