//! Opaque cursors over keyset pagination. A cursor wraps the last key of a
//! page; the store continues strictly after it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use satusky_types::ErrorCode;
use satusky_types::page::{DEFAULT_LIMIT, MAX_LIMIT};

use crate::{Error, Result};

/// A validated page request as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Continue strictly after this key.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// Validates `limit` and decodes `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        let after = cursor.map(decode).transpose()?;
        Ok(Self { limit, after })
    }

    /// Store queries fetch one more row than asked to learn whether a next page exists.
    pub fn fetch_limit(&self) -> u32 {
        self.limit + 1
    }
}

const PREFIX: &str = "c1:";

pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{key}"))
}

fn decode(cursor: &str) -> Result<String> {
    let bad = || {
        Error::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this server issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    s.strip_prefix(PREFIX).map(str::to_owned).ok_or_else(bad)
}

/// Turns `limit + 1` fetched rows into a page, with a cursor when more remain.
pub fn paginate<T>(
    mut rows: Vec<T>,
    req: &PageRequest,
    key: impl Fn(&T) -> String,
) -> satusky_types::Page<T> {
    let more = rows.len() > req.limit as usize;
    rows.truncate(req.limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode(&key(r)))
    } else {
        None
    };
    satusky_types::Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_forgeries() {
        let c = encode("0190-abc");
        assert_eq!(
            PageRequest::parse(Some(5), Some(&c))
                .unwrap()
                .after
                .as_deref(),
            Some("0190-abc")
        );
        let err = PageRequest::parse(None, Some("not-a-cursor!")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCursor);
        let err = PageRequest::parse(Some(0), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidQuery);
        let err = PageRequest::parse(Some(MAX_LIMIT + 1), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidQuery);
    }

    #[test]
    fn paginate_emits_a_cursor_only_when_more_rows_exist() {
        let req = PageRequest::first(2);
        let p = paginate(vec![1, 2, 3], &req, ToString::to_string);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor, Some(encode("2")));
        let p = paginate(vec![1, 2], &req, ToString::to_string);
        assert_eq!(p.next_cursor, None);
    }
}
