//! Pagination (§11.5): items sorted by (creation time, id), pages by number or by cursor.
//!
//! A cursor is base64 of `<id>@<creationTimestampMs>` naming the last item returned; the next
//! page starts right after that position, found by binary search, so a cursor stays usable when
//! its item has gone. `Pagination` reports `hasMore`, `totalItems`, the deprecated `totalPages`,
//! the cursor of the page's last item and its position.

use std::borrow::Borrow;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::error::ApiError;
use crate::pb;

/// Sort key of a job or task: creation time in ms (its first `Accepted` status), then id.
pub type SortKey = (u64, String);

/// A validated page request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size (> 0).
    pub page_size: usize,
    /// Page number (used when there is no cursor).
    pub page_number: usize,
    /// Position after which the page starts (from the cursor).
    pub after: Option<SortKey>,
    /// The cursor as received, echoed in `currentPage`.
    pub cursor: String,
}

impl PageRequest {
    /// Validates a gRPC `Page`: `pageSize > 0`, `pageNumber >= 0`, and a decodable cursor.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad size or number, `InvalidCursor` for a bad cursor.
    #[allow(deprecated)] // pageNumber is deprecated on the wire but still served
    pub fn from_proto(page: Option<&pb::Page>) -> Result<PageRequest, ApiError> {
        let page = page.cloned().unwrap_or_default();
        if page.page_size <= 0 {
            return Err(ApiError::InvalidArgument(format!(
                "Page size must be > 0 (is {})",
                page.page_size
            )));
        }
        if page.page_number < 0 {
            return Err(ApiError::InvalidArgument(format!(
                "Page number must be >= 0 (is {})",
                page.page_number
            )));
        }
        let after = if page.cursor.is_empty() {
            None
        } else {
            Some(decode_cursor(&page.cursor)?)
        };
        Ok(PageRequest {
            page_size: usize::try_from(page.page_size).unwrap_or(usize::MAX),
            page_number: usize::try_from(page.page_number).unwrap_or(0),
            after,
            cursor: page.cursor,
        })
    }
}

/// The cursor naming an item.
pub fn encode_cursor(key: &SortKey) -> String {
    STANDARD.encode(format!("{}@{}", key.1, key.0))
}

/// Decodes a cursor into the position it names.
///
/// # Errors
/// `InvalidCursor` when it is not base64 of `<id>@<ms>`.
pub fn decode_cursor(cursor: &str) -> Result<SortKey, ApiError> {
    let bytes = STANDARD
        .decode(cursor)
        .or_else(|_| STANDARD_NO_PAD.decode(cursor))
        .map_err(|_| ApiError::InvalidCursor(cursor.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| ApiError::InvalidCursor(cursor.to_string()))?;
    let (id, ms) = text
        .rsplit_once('@')
        .ok_or_else(|| ApiError::InvalidCursor(cursor.to_string()))?;
    let ms = ms
        .parse::<u64>()
        .map_err(|_| ApiError::InvalidCursor(cursor.to_string()))?;
    Ok((ms, id.to_string()))
}

/// Cuts one page out of `items`, which must be sorted by key (owned or borrowed).
#[allow(deprecated)] // pageNumber and totalPages are deprecated on the wire but still filled
pub fn paginate<K: Borrow<SortKey>, T>(
    items: Vec<(K, T)>,
    request: &PageRequest,
) -> (Vec<T>, pb::Pagination) {
    let total = items.len();
    let size = request.page_size.max(1);
    let start = match &request.after {
        Some(after) => items.partition_point(|(key, _)| key.borrow() <= after),
        None => request.page_number.saturating_mul(size).min(total),
    };
    let end = start.saturating_add(size).min(total);
    let page_number = if request.after.is_some() {
        start / size
    } else {
        request.page_number
    };
    let last = (end > start).then(|| end - 1);
    let cursor = last
        .map(|i| encode_cursor(items[i].0.borrow()))
        .unwrap_or_default();
    let cursor_position = last.unwrap_or(0);
    let page: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|(_, item)| item)
        .collect();
    let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let pagination = pb::Pagination {
        current_page: Some(pb::Page {
            page_number: to_i32(page_number),
            page_size: to_i32(size),
            cursor: request.cursor.clone(),
        }),
        has_more: end < total,
        total_pages: to_i32(total.div_ceil(size)),
        total_items: to_i32(total),
        cursor,
        cursor_position: to_i32(cursor_position),
    };
    (page, pagination)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: u64) -> Vec<(SortKey, u64)> {
        (0..n)
            .map(|i| ((1_000 + i, format!("id-{i}")), i))
            .collect()
    }

    fn request(size: usize, number: usize, after: Option<SortKey>) -> PageRequest {
        PageRequest {
            page_size: size,
            page_number: number,
            after,
            cursor: String::new(),
        }
    }

    #[test]
    fn page_numbers_cut_consecutive_pages() {
        let (page, p) = paginate(items(5), &request(2, 1, None));
        assert_eq!(page, vec![2, 3]);
        assert!(p.has_more);
        assert_eq!(p.total_items, 5);
        #[allow(deprecated)]
        let total_pages = p.total_pages;
        assert_eq!(total_pages, 3);
        assert_eq!(p.cursor_position, 3);
        assert_eq!(
            decode_cursor(&p.cursor).unwrap(),
            (1_003, "id-3".to_string())
        );
        let (last, p) = paginate(items(5), &request(2, 2, None));
        assert_eq!(last, vec![4]);
        assert!(!p.has_more);
    }

    #[test]
    fn a_cursor_continues_after_its_item_even_when_the_item_is_gone() {
        let (_, p) = paginate(items(5), &request(2, 0, None));
        let after = decode_cursor(&p.cursor).unwrap();
        let mut remaining = items(5);
        remaining.remove(1); // the cursor's item disappears
        let (page, next) = paginate(remaining, &request(2, 0, Some(after)));
        assert_eq!(page, vec![2, 3]);
        assert!(next.has_more);
    }

    #[test]
    fn an_empty_result_has_no_cursor() {
        let (page, p) = paginate(Vec::<(SortKey, u64)>::new(), &request(10, 0, None));
        assert!(page.is_empty());
        assert_eq!(p.cursor, "");
        assert!(!p.has_more);
    }

    #[test]
    fn page_requests_are_validated_like_titus() {
        let zero = pb::Page::default();
        let err = PageRequest::from_proto(Some(&zero)).unwrap_err();
        assert_eq!(err.to_string(), "Page size must be > 0 (is 0)");
        let bad_cursor = pb::Page {
            page_size: 1,
            cursor: "!!!".into(),
            ..Default::default()
        };
        let err = PageRequest::from_proto(Some(&bad_cursor)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
        let ok = pb::Page {
            page_size: 3,
            cursor: encode_cursor(&(7, "a@b".into())),
            ..Default::default()
        };
        assert_eq!(
            PageRequest::from_proto(Some(&ok)).unwrap().after,
            Some((7, "a@b".to_string()))
        );
    }
}
