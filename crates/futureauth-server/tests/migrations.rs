//! The Postgres and SQLite migrations are two files per step (applied migrations keep their
//! bytes: sqlx checks their checksums), so nothing but this test keeps them in step: it
//! migrates a fresh Postgres schema and a fresh SQLite file and compares what they built
//! (tables, columns with nullability and a normalised type, primary keys, indexes and
//! foreign keys). Any drift fails, with the difference listed.

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;

use common::{Backend, TestDb};
use futureauth_server::store::{postgres, sqlite};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// One fact about a schema, comparable across the two backends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Fact {
    /// `table.column`: its normalised type and whether it is `NOT NULL`.
    Column {
        table: String,
        column: String,
        kind: String,
        not_null: bool,
    },
    /// The primary key of a table, its columns in order.
    PrimaryKey { table: String, columns: String },
    /// An index other than the primary key's. Explicit indexes keep their name; those a
    /// `UNIQUE` constraint creates are named differently by each database, so they go by
    /// their columns.
    Index {
        table: String,
        name: Option<String>,
        columns: String,
        unique: bool,
    },
    /// A foreign key: `table.column` → `references`, and its `ON DELETE` action.
    ForeignKey {
        table: String,
        column: String,
        references: String,
        on_delete: String,
    },
}

/// The two backends' names for the same stored type: every integer is an `INTEGER`
/// (`BIGINT` on Postgres: epoch milliseconds do not fit 32 bits).
fn normalised_type(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "bigint" | "integer" | "int" | "int8" | "int4" | "smallint" => "integer".into(),
        "character varying" | "varchar" | "text" => "text".into(),
        "bytea" | "blob" => "blob".into(),
        other => other.into(),
    }
}

/// A Postgres `confdeltype` as SQLite spells the action.
fn pg_on_delete(code: &str) -> String {
    match code {
        "c" => "CASCADE",
        "r" => "RESTRICT",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
    .into()
}

/// What the Postgres migrations built in the connection's schema.
async fn postgres_schema(conn: &mut PgConnection) -> BTreeSet<Fact> {
    let mut facts = BTreeSet::new();
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("read columns");
    for (table, column, kind, nullable) in columns {
        facts.insert(Fact::Column {
            table,
            column,
            kind: normalised_type(&kind),
            not_null: nullable == "NO",
        });
    }
    let indexes: Vec<(String, String, bool, bool, bool, String)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, ix.indisprimary, ix.indisunique,
                EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid),
                string_agg(a.attname::text, ',' ORDER BY k.n)
         FROM pg_index ix
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_namespace ns ON ns.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         WHERE ns.nspname = current_schema() AND t.relname <> '_sqlx_migrations'
         GROUP BY t.relname, i.relname, ix.indisprimary, ix.indisunique, ix.indexrelid",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("read indexes");
    for (table, name, primary, unique, constraint, columns) in indexes {
        facts.insert(if primary {
            Fact::PrimaryKey { table, columns }
        } else {
            Fact::Index {
                table,
                name: (!constraint).then_some(name),
                columns,
                unique,
            }
        });
    }
    let keys: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, a.attname::text, r.relname::text, ra.attname::text,
                c.confdeltype::text
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_class r ON r.oid = c.confrelid
         JOIN pg_namespace ns ON ns.oid = t.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
         WHERE c.contype = 'f' AND ns.nspname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("read foreign keys");
    for (table, column, target, target_column, action) in keys {
        facts.insert(Fact::ForeignKey {
            table,
            column,
            references: format!("{target}({target_column})"),
            on_delete: pg_on_delete(&action),
        });
    }
    facts
}

/// What the SQLite migrations built.
async fn sqlite_schema(conn: &mut SqliteConnection) -> BTreeSet<Fact> {
    let mut facts = BTreeSet::new();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("read tables");
    for (table,) in tables {
        let columns: Vec<(String, String, i64, i64)> =
            sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
                .bind(&table)
                .fetch_all(&mut *conn)
                .await
                .expect("read columns");
        let mut primary: Vec<(i64, &str)> = Vec::new();
        for (column, kind, not_null, pk) in &columns {
            facts.insert(Fact::Column {
                table: table.clone(),
                column: column.clone(),
                kind: normalised_type(kind),
                // A primary key column is never null on Postgres; SQLite only enforces it
                // for an INTEGER key, yet no row of ours has a null key.
                not_null: *not_null == 1 || *pk > 0,
            });
            if *pk > 0 {
                primary.push((*pk, column));
            }
        }
        primary.sort();
        if !primary.is_empty() {
            let columns: Vec<&str> = primary.into_iter().map(|(_, c)| c).collect();
            facts.insert(Fact::PrimaryKey {
                table: table.clone(),
                columns: columns.join(","),
            });
        }
        let indexes: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list($1)")
                .bind(&table)
                .fetch_all(&mut *conn)
                .await
                .expect("read indexes");
        for (name, unique, origin) in indexes.into_iter().filter(|(_, _, o)| o != "pk") {
            let columns: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(&mut *conn)
                    .await
                    .expect("read index columns");
            let columns: Vec<String> = columns.into_iter().map(|(c,)| c).collect();
            facts.insert(Fact::Index {
                table: table.clone(),
                name: (origin == "c").then_some(name),
                columns: columns.join(","),
                unique: unique == 1,
            });
        }
        let keys: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list($1)",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .expect("read foreign keys");
        for (column, target, target_column, on_delete) in keys {
            facts.insert(Fact::ForeignKey {
                table: table.clone(),
                column,
                references: format!("{target}({target_column})"),
                on_delete,
            });
        }
    }
    facts
}

/// Fails listing what only one side has.
fn assert_same<T: Ord + Debug>(postgres: &BTreeSet<T>, sqlite: &BTreeSet<T>) {
    let only_pg: Vec<_> = postgres.difference(sqlite).collect();
    let only_sqlite: Vec<_> = sqlite.difference(postgres).collect();
    assert!(
        only_pg.is_empty() && only_sqlite.is_empty(),
        "the backends' migrations drifted apart:\n only on Postgres: {only_pg:#?}\n only on SQLite: {only_sqlite:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_migrate_to_the_same_schema() {
    let pg = TestDb::new(Backend::Postgres).await;
    let lite = TestDb::new(Backend::Sqlite).await;
    // Migrates both.
    pg.store().await.close().await;
    lite.store().await.close().await;
    let mut pg_conn = PgConnection::connect(&pg.url).await.expect("connect");
    let mut lite_conn = SqliteConnection::connect(&lite.url).await.expect("connect");
    let pg_facts = postgres_schema(&mut pg_conn).await;
    let lite_facts = sqlite_schema(&mut lite_conn).await;
    // A reader that saw nothing would make the comparison vacuous.
    for facts in [&pg_facts, &lite_facts] {
        assert!(facts.iter().any(|f| matches!(f, Fact::ForeignKey { .. })));
        assert!(facts
            .iter()
            .any(|f| matches!(f, Fact::Index { name: None, .. })));
        assert!(facts
            .iter()
            .any(|f| matches!(f, Fact::Index { name: Some(_), .. })));
        let outbox = |f: &&Fact| matches!(f, Fact::Column { table, .. } if table == "outbox");
        assert!(facts.iter().filter(outbox).count() > 10);
    }
    assert_same(&pg_facts, &lite_facts);
}

#[test]
fn both_backends_have_the_same_migration_steps() {
    let steps = |m: &sqlx::migrate::Migrator| -> BTreeSet<(i64, String)> {
        m.iter()
            .map(|s| (s.version, s.description.to_string()))
            .collect()
    };
    assert_same(&steps(&postgres::MIGRATOR), &steps(&sqlite::MIGRATOR));
}
