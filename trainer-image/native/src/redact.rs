//! Secret redaction: one scan for the rules' anchors decides which rules could match a text at all;
//! only those are searched for, and the ones that hit located (with captures) and replaced. The rules
//! are in rules.rs.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;

use crate::code_values::reads_as_code;
pub use crate::rules::RULES;

/// The only characters that simple Unicode case folding (the rules' `(?i)`, in RE2 as in `regex`) equates with
/// ASCII letters: ſ with s, the Kelvin sign with k (not İ or ı: those fold to i only in Turkish). A text holding
/// one may match a rule without an ASCII anchor, so it is checked against every rule.
const FOLDS_TO_ASCII: [&str; 2] = ["\u{17f}", "\u{212a}"];

/// A redaction rule; rules.rs holds the table.
pub struct Rule {
    pub name: &'static str,
    pub secret: &'static str,
    /// Context kept before the secret.
    pub before: &'static str,
    /// Context kept after the secret.
    pub after: &'static str,
    /// Every match holds one of these, ASCII case aside (`Redactor` finds them all in one scan first).
    pub anchors: &'static [&'static str],
    /// Leave an unquoted value that reads as code rather than a secret (`reads_as_code`).
    pub code_aware: bool,
}

/// A rule whose match is all secret (a fixed prefix names it).
pub const fn token(name: &'static str, anchors: &'static [&'static str], secret: &'static str) -> Rule {
    Rule {
        name,
        secret,
        before: "",
        after: "",
        anchors,
        code_aware: false,
    }
}

/// A rule whose `before` and `after` context is kept around the secret.
pub const fn context(
    name: &'static str,
    anchors: &'static [&'static str],
    [before, secret, after]: [&'static str; 3],
) -> Rule {
    Rule {
        name,
        secret,
        before,
        after,
        anchors,
        code_aware: false,
    }
}

/// A context rule that leaves an unquoted value reading as code.
pub const fn assignment(name: &'static str, anchors: &'static [&'static str], parts: [&'static str; 3]) -> Rule {
    Rule {
        code_aware: true,
        ..context(name, anchors, parts)
    }
}

pub struct Redactor {
    /// Every rule's anchors, and the characters of FOLDS_TO_ASCII, found in one scan (ASCII case-insensitive).
    /// Only the rules whose anchors a text holds can match it: one pass over a clean text settles it,
    /// where a search per rule (each with its own prefilter) cost ~1 ns/byte a rule on the bench corpus.
    /// A DFA (~400 kB): no prefilter applies (anchors start with almost any letter), and the default
    /// contiguous NFA took 4x as long per byte.
    anchors: AhoCorasick,
    /// Per pattern of `anchors`: the rules it admits, one bit a rule.
    admits: Vec<u64>,
    /// Per rule: its whole pattern, to check an admitted rule against the text before it is applied.
    gates: Vec<Regex>,
    /// Per rule: group 1 is the context kept before the secret, group 2 the context kept after it.
    patterns: Vec<Regex>,
    markers: Vec<Vec<u8>>,
}

const _: () = assert!(RULES.len() <= u64::BITS as usize, "one bit a rule in Redactor::admits");

impl Redactor {
    pub fn new() -> Self {
        let mut needles: Vec<&str> = Vec::new();
        let mut admits: Vec<u64> = Vec::new();
        for (index, rule) in RULES.iter().enumerate() {
            needles.extend(rule.anchors);
            admits.extend(rule.anchors.iter().map(|_| 1u64 << index));
        }
        needles.extend(FOLDS_TO_ASCII);
        admits.extend(FOLDS_TO_ASCII.map(|_| u64::MAX));
        let anchors = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&needles)
            .expect("the anchors build");
        let gates = RULES
            .iter()
            .map(|rule| Regex::new(&format!("{}{}{}", rule.before, rule.secret, rule.after)).expect("a rule compiles"))
            .collect();
        let patterns = RULES
            .iter()
            .map(|rule| {
                Regex::new(&format!("({}){}({})", rule.before, rule.secret, rule.after)).expect("a rule compiles")
            })
            .collect();
        let markers = RULES
            .iter()
            .map(|rule| format!("[REDACTED:{}]", rule.name).into_bytes())
            .collect();
        Redactor {
            anchors,
            admits,
            gates,
            patterns,
            markers,
        }
    }

    /// `text` with every secret replaced; one added to `counts[rule]` per replacement.
    pub fn redact<'a>(&self, text: Cow<'a, str>, counts: &mut [u32; RULES.len()]) -> Cow<'a, str> {
        let mut admitted = 0u64;
        for found in self.anchors.find_overlapping_iter(text.as_bytes()) {
            admitted |= self.admits[found.pattern().as_usize()];
        }
        // The rules that match the original text apply in order, each to the previous one's result.
        let hits: Vec<usize> = (0..RULES.len())
            .filter(|&index| admitted >> index & 1 == 1 && self.gates[index].is_match(text.as_bytes()))
            .collect();
        if hits.is_empty() {
            return text;
        }
        let mut data = text.into_owned().into_bytes();
        for index in hits {
            data = self.substitute(index, &data, counts);
        }
        // Matches start and end on character boundaries (the patterns are Unicode-aware).
        Cow::Owned(
            String::from_utf8(data).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        )
    }

    fn substitute(&self, index: usize, data: &[u8], counts: &mut [u32; RULES.len()]) -> Vec<u8> {
        let mut result = Vec::with_capacity(data.len());
        let mut position = 0;
        for captures in self.patterns[index].captures_iter(data) {
            let whole = captures.get(0).expect("group 0 always exists");
            let before = captures.get(1).expect("group 1 always takes part");
            let after = captures.get(2).expect("group 2 always takes part");
            let quoted = matches!(before.as_bytes().last(), Some(b'"' | b'\''));
            if RULES[index].code_aware && !quoted && reads_as_code(&data[before.end()..after.start()]) {
                continue;
            }
            result.extend_from_slice(&data[position..whole.start()]);
            result.extend_from_slice(before.as_bytes());
            result.extend_from_slice(&self.markers[index]);
            result.extend_from_slice(after.as_bytes());
            position = whole.end();
            counts[index] += 1;
        }
        result.extend_from_slice(&data[position..]);
        result
    }
}
