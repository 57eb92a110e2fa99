//! The `Range` request header (RFC 9110 §14), for one byte range. A request for several
//! ranges is answered with the whole file, which the RFC allows, rather than with a
//! multipart body no client of a file API wants.

use std::ops::Range;

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// No usable range: send the whole file.
    Whole,
    /// These bytes (end exclusive), as 206.
    Part(Range<u64>),
    /// No byte of the file is in the range: 416.
    Unsatisfiable,
}

/// Reads a `Range` header value against a file of `size` bytes. A header that is not a
/// valid byte range is ignored, as the RFC asks.
pub fn wanted(header: &str, size: u64) -> Wanted {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `bytes=-N`: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(size.saturating_sub(suffix)..size)
            }
        }
        // `bytes=A-` or `bytes=A-B`.
        (false, Some(start), end) if end.is_some() || last.trim().is_empty() => {
            if end.is_some_and(|end| end < start) {
                return Wanted::Whole;
            }
            if start >= size {
                return Wanted::Unsatisfiable;
            }
            let end = end.map_or(size, |end| end.saturating_add(1).min(size));
            Wanted::Part(start..end)
        }
        _ => Wanted::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_are_read_as_the_rfc_says() {
        assert_eq!(wanted("bytes=0-99", 1000), Wanted::Part(0..100));
        assert_eq!(wanted("bytes=900-", 1000), Wanted::Part(900..1000));
        assert_eq!(wanted("bytes=-100", 1000), Wanted::Part(900..1000));
        assert_eq!(wanted("bytes=-5000", 1000), Wanted::Part(0..1000));
        assert_eq!(wanted("bytes=990-2000", 1000), Wanted::Part(990..1000));
        assert_eq!(wanted("bytes=1000-", 1000), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=-0", 1000), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=0-", 0), Wanted::Unsatisfiable);
    }

    #[test]
    fn malformed_or_multiple_ranges_mean_the_whole_file() {
        for header in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=-",
            "bytes",
        ] {
            assert_eq!(wanted(header, 1000), Wanted::Whole, "{header}");
        }
    }
}
