//! [`Ts`]: one timestamp type for both backends, so statements and row types are shared.

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A timestamp as FutureAuth stores it: `TIMESTAMPTZ` in Postgres, integer milliseconds
/// since the epoch in SQLite (so that it compares as a number there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl From<Ts> for DateTime<Utc> {
    fn from(ts: Ts) -> Self {
        ts.0
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sqlx::Postgres;

    impl Type<Postgres> for Ts {
        fn type_info() -> <Postgres as Database>::TypeInfo {
            <DateTime<Utc> as Type<Postgres>>::type_info()
        }

        fn compatible(ty: &<Postgres as Database>::TypeInfo) -> bool {
            <DateTime<Utc> as Type<Postgres>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Postgres> for Ts {
        fn encode_by_ref(
            &self,
            buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
        ) -> Result<IsNull, BoxDynError> {
            // The binary form, as the decoder below reads it.
            let micros = self.0.timestamp_micros() - PG_EPOCH_MICROS;
            <i64 as Encode<'q, Postgres>>::encode_by_ref(&micros, buf)
        }
    }

    /// Microseconds from the Unix epoch to Postgres' epoch, 2000-01-01 00:00:00 UTC.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

    impl<'r> Decode<'r, Postgres> for Ts {
        /// The binary form (microseconds since 2000-01-01 UTC) turned into a time with one
        /// addition: sqlx's own decoder builds the date by calendar arithmetic, about 300
        /// instructions a timestamp, and a session check reads five. Text results take
        /// sqlx's decoder.
        fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
            if value.format() == sqlx::postgres::PgValueFormat::Binary {
                let micros = i64::from_be_bytes(value.as_bytes()?.try_into()?);
                return micros
                    .checked_add(PG_EPOCH_MICROS)
                    .and_then(DateTime::from_timestamp_micros)
                    .map(Ts)
                    .ok_or_else(|| format!("timestamp out of range: {micros} µs").into());
            }
            Ok(Ts(<DateTime<Utc> as Decode<'r, Postgres>>::decode(value)?))
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use sqlx::Sqlite;

    impl Type<Sqlite> for Ts {
        fn type_info() -> <Sqlite as Database>::TypeInfo {
            <i64 as Type<Sqlite>>::type_info()
        }

        fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
            <i64 as Type<Sqlite>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Sqlite> for Ts {
        fn encode_by_ref(
            &self,
            buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
        ) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<'q, Sqlite>>::encode_by_ref(&self.0.timestamp_millis(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Ts {
        fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
            let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
            DateTime::from_timestamp_millis(ms)
                .map(Ts)
                .ok_or_else(|| format!("timestamp out of range: {ms} ms").into())
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    /// The binary decoder and encoder read and write what sqlx's chrono ones do, on real
    /// Postgres, before and after its 2000 epoch, to the microsecond.
    #[tokio::test]
    async fn decodes_as_sqlx_does() {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        for text in [
            "1970-01-01 00:00:00+00",
            "1999-12-31 23:59:59.999999+00",
            "2000-01-01 00:00:00+00",
            "2026-12-06 21:30:00.123456+00",
            "2250-06-30 12:00:00.000001+00",
            "1901-02-03 04:05:06.7+00",
        ] {
            let sql = format!("SELECT '{text}'::timestamptz, '{text}'::timestamptz");
            let (ours, theirs): (Ts, DateTime<Utc>) =
                sqlx::query_as(&sql).fetch_one(&pool).await.unwrap();
            assert_eq!(ours.0, theirs, "{text}");
            let (same,): (bool,) = sqlx::query_as("SELECT $1 = $2")
                .bind(Ts(theirs))
                .bind(theirs)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert!(same, "{text} written");
        }
    }
}
