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
            <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Ts {
        fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
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
