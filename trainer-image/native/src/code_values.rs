//! Unquoted values that read as code rather than a secret: `password=password)`, `token: self.token`,
//! `api_key=os.environ["API_KEY"]`. The rules marked `code_aware` leave them (redact.rs asks `reads_as_code`).

/// Unquoted values that are words of code or prose, not secrets (compared lower-cased).
const NOT_SECRETS: &str = concat!(
    "none null nil true false undefined str string bytes int bool any object optional required hidden empty ",
    "unset the a an is it to and or of for in not no yes set see your this here password passwd token"
);

/// Words that make an identifier holding `_` read as the name of a credential variable (db_password, api_key).
const CREDENTIAL_WORDS: [&str; 6] = ["password", "passwd", "secret", "token", "key", "auth"];

/// Whether an unquoted `value` reads as code: a call or subscript (`os.environ[`, `getpass()`), a
/// credential variable's name with a dot or an underscore (`self.password`, `settings.SECRET_KEY`,
/// `db_password`; not `abcdef.0123456789abcdef`), or a word of `NOT_SECRETS`, each possibly followed
/// by closing brackets.
pub fn reads_as_code(value: &[u8]) -> bool {
    // An argument's closing brackets: password=password) reads as password.
    let end = value.len()
        - value
            .iter()
            .rev()
            .take_while(|&&byte| matches!(byte, b')' | b']' | b'}'))
            .count();
    let value = &value[..end];
    let lower = value.to_ascii_lowercase();
    if NOT_SECRETS.split(' ').any(|word| word.as_bytes() == lower.as_slice()) {
        return true;
    }
    let path = identifier_path(value);
    if path == 0 {
        return false;
    }
    if path < value.len() {
        return matches!(value[path], b'(' | b'[');
    }
    let last = &lower[lower.iter().rposition(|&byte| byte == b'.').map_or(0, |dot| dot + 1)..];
    (value.contains(&b'.') || value.contains(&b'_'))
        && CREDENTIAL_WORDS
            .iter()
            .any(|word| last.windows(word.len()).any(|window| window == word.as_bytes()))
}

/// The length of the longest prefix of `value` that is `name(.name)*`, names being `[A-Za-z_][A-Za-z0-9_]*`.
fn identifier_path(value: &[u8]) -> usize {
    let name = |start: usize| -> usize {
        let mut end = start;
        while end < value.len() && (value[end] == b'_' || value[end].is_ascii_alphanumeric()) {
            if end == start && value[end].is_ascii_digit() {
                return start;
            }
            end += 1;
        }
        end
    };
    let mut end = name(0);
    if end == 0 {
        return 0;
    }
    while end < value.len() && value[end] == b'.' {
        let next = name(end + 1);
        if next == end + 1 {
            break;
        }
        end = next;
    }
    end
}
