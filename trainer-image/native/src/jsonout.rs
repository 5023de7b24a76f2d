//! The output line, byte for byte as `orjson.dumps(..., option=OPT_APPEND_NEWLINE)` wrote it.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Byte -> 0 (written as is), b'u' (\u00XX) or the letter of its short escape.
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

pub fn string(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        // Eight bytes at a time while none needs escaping (most text: only newlines and quotes do).
        if index + 8 <= bytes.len() && !needs_escape(u64::from_le_bytes(bytes[index..index + 8].try_into().unwrap())) {
            index += 8;
            continue;
        }
        let byte = bytes[index];
        let escape = ESCAPES[byte as usize];
        index += 1;
        if escape == 0 {
            continue;
        }
        let index = index - 1;
        out.extend_from_slice(&bytes[start..index]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes is a control character, '"' or '\\' (SWAR: bit 7 of each byte lane
/// is set by the "has a zero byte" test of `word ^ repeated(c)`, and by the "less than 0x20" test).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |value: u64| value.wrapping_sub(ONES) & !value & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space | has_zero(word ^ (ONES * u64::from(b'"'))) | has_zero(word ^ (ONES * u64::from(b'\\')))) != 0
}

/// A float as orjson writes it: shortest round-trip digits, always with a '.' or an exponent.
pub fn float(out: &mut Vec<u8>, value: f64) {
    let mut buffer = ryu::Buffer::new();
    out.extend_from_slice(buffer.format_finite(value).as_bytes());
}
