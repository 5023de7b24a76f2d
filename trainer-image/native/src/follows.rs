//! What must surround a rule's anchor in every match, tested at each place the scan found the anchor before the
//! rule's regex is tried there (`Rule::after_anchor`). Each test is a necessary condition only: it may pass where
//! the regex then fails, never fail where the regex would match. They are byte tests, so they hold only for texts
//! without the non-ASCII characters that fold to ASCII letters (redact.rs checks those texts against every rule
//! with its regex alone).
//!
//! Why: the anchors of the assignment rules are everyday words (`token` is in half the bench corpus's texts, as
//! prose: "token refresh"), and a regex search at each of them cost more than the scan that found them.

/// `[\t\n\f\r ]`, RE2's `\s`.
fn is_space(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn is_blank(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ')
}

/// An ASCII word character, for `(?-u:\b)`.
fn is_word(byte: u8) -> bool {
    byte == b'_' || byte.is_ascii_alphanumeric()
}

/// The first offset from `at` on whose byte is not in `class`.
fn skip(text: &[u8], mut at: usize, class: fn(u8) -> bool) -> usize {
    while at < text.len() && class(text[at]) {
        at += 1;
    }
    at
}

/// Every rule passes: no test is known for it.
pub fn anything(_text: &[u8], _start: usize, _end: usize) -> bool {
    true
}

/// `["']?[\t ]*[:=]` right after the anchor (`token: `, `authorization = `, `"password": `).
pub fn separator_on_line(text: &[u8], _start: usize, end: usize) -> bool {
    separator(text, end, is_blank)
}

/// `(?:[_-][a-z0-9]+)*["']?[\t\n\f\r ]*[:=]` right after the anchor: the rest of a snake or kebab-case key
/// (`DB_PASSWORD_FILE`, `client_secret`), then its separator. The key's parts are taken whole: the regex can end
/// them nowhere else, as neither the quote, the spaces nor the separator is a letter, digit, `_` or `-`.
pub fn key_then_separator(text: &[u8], _start: usize, end: usize) -> bool {
    let mut at = end;
    while at + 1 < text.len() && matches!(text[at], b'_' | b'-') && text[at + 1].is_ascii_alphanumeric() {
        at = skip(text, at + 1, |byte| byte.is_ascii_alphanumeric());
    }
    separator(text, at, is_space)
}

/// `(?-u:\b)` before the anchor and `[\t\n\f\r ]` after it (`Bearer abc`, `machine host`, `default login`).
pub fn word_then_space(text: &[u8], start: usize, end: usize) -> bool {
    (start == 0 || !is_word(text[start - 1])) && text.get(end).copied().is_some_and(is_space)
}

/// `["']?`, then `space`s, then `:` or `=`, from `at` (a quote there cannot be skipped: nothing after it matches one).
fn separator(text: &[u8], at: usize, space: fn(u8) -> bool) -> bool {
    let at = at + usize::from(matches!(text.get(at), Some(b'"' | b'\'')));
    matches!(text.get(skip(text, at, space)), Some(b':' | b'='))
}
