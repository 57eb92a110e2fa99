//! What is safe to keep and send back about a file: its name, its media type and the
//! `Content-Disposition` of its download.

/// The longest name kept, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// A client's file name made safe to store and show: the last path segment only (no
/// `../`), without control or bidirectional-override characters, at most 255 bytes, and
/// `file` when nothing is left. The name never reaches an object key.
pub fn clean_name(given: &str) -> String {
    let last = given.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect();
    let mut name = kept.trim().trim_start_matches('.').trim().to_owned();
    if name.len() > MAX_NAME_BYTES {
        // Keep the extension where it fits: `very-long….pdf`.
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.len() <= 16)
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let mut cut = MAX_NAME_BYTES - extension.len();
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name.push_str(&extension);
    }
    if name.is_empty() {
        "file".to_owned()
    } else {
        name
    }
}

/// Characters that reorder displayed text: `evil<U+202E>fdp.exe` shows as `evilexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The media type stored for a file: what its first bytes are, when they are known;
/// else what the client declared, unless the declaration names a type whose signature
/// the bytes lack (a claimed PNG that is not one); else `application/octet-stream`.
pub fn content_type(head: &[u8], declared: Option<&str>) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    let declared = declared
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| plausible_media_type(d));
    match declared {
        Some(declared) => {
            let essence = declared.split(';').next().unwrap_or_default().trim();
            if infer::is_mime_supported(essence) {
                // A type with a known signature that the bytes do not carry.
                "application/octet-stream".to_owned()
            } else {
                declared
            }
        }
        None => "application/octet-stream".to_owned(),
    }
}

fn plausible_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    value.len() <= 255
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && essence
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
}

/// Whether a browser may show this type in place: images, audio, video, PDF and plain
/// text. Anything else (HTML, SVG, scripts) downloads, so a stored file can never run as
/// a page of the API's origin.
pub fn shows_inline(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence == "image/svg+xml" {
        return false;
    }
    essence.starts_with("image/")
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || essence == "application/pdf"
        || essence == "text/plain"
}

/// `Content-Disposition` (RFC 6266): an ASCII fallback name and the exact name encoded
/// per RFC 8187.
pub fn disposition(name: &str, inline: bool) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("a\r\nb\0c.txt"), "abc.txt");
        assert_eq!(clean_name("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name("   "), "file");
        assert_eq!(clean_name(".env"), "env");
        assert_eq!(clean_name("naïve café.png"), "naïve café.png");
    }

    #[test]
    fn long_names_are_cut_on_a_character_and_keep_their_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let cleaned = clean_name(&long);
        assert!(cleaned.len() <= 255);
        assert!(cleaned.ends_with(".pdf"));
    }

    #[test]
    fn bytes_decide_the_type_before_the_declaration() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(content_type(png, Some("text/html")), "image/png");
        assert_eq!(content_type(b"hello", Some("text/csv")), "text/csv");
        assert_eq!(
            content_type(b"<html><body>", Some("image/png")),
            "text/html"
        );
        assert_eq!(
            content_type(b"hello", Some("image/png")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(b"hello", Some("not a type")),
            "application/octet-stream"
        );
        assert_eq!(content_type(b"hello", None), "application/octet-stream");
    }

    #[test]
    fn only_passive_types_show_inline() {
        assert!(shows_inline("image/png"));
        assert!(shows_inline("text/plain; charset=utf-8"));
        assert!(!shows_inline("image/svg+xml"));
        assert!(!shows_inline("text/html"));
    }

    #[test]
    fn dispositions_carry_an_ascii_fallback_and_the_exact_name() {
        assert_eq!(
            disposition("résumé \"final\".pdf", false),
            "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
        );
    }
}
