//! Secret redaction: one scan for the rules' anchors (anchors.rs) decides which rules could match a text
//! at all; only those are searched for, and the ones that hit located (with captures) and replaced. The
//! rules are in rules.rs.

use std::borrow::Cow;

use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};

use crate::anchors::{Found, Scanner};
use crate::code_values::reads_as_code;
use crate::follows;
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
    /// Every match starts at most this many bytes before the start of one of `anchors` (None: anywhere
    /// before). Then a text holding the anchors is checked only at those places (`Rule::near_anchor`).
    pub reach: Option<usize>,
    /// A test of the text around an anchor found at `start..end` that every match there passes (follows.rs);
    /// for a rule with a `reach`, where the scan found its anchors.
    pub follows: fn(text: &[u8], start: usize, end: usize) -> bool,
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
        reach: None,
        follows: follows::anything,
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
        reach: None,
        follows: follows::anything,
    }
}

/// A context rule that leaves an unquoted value reading as code.
pub const fn assignment(name: &'static str, anchors: &'static [&'static str], parts: [&'static str; 3]) -> Rule {
    Rule {
        code_aware: true,
        ..context(name, anchors, parts)
    }
}

impl Rule {
    /// This rule, whose every match starts at most `reach` bytes before the start of one of its anchors.
    pub const fn near_anchor(self, reach: usize) -> Rule {
        Rule {
            reach: Some(reach),
            ..self
        }
    }

    /// This rule, whose every match passes `follows` at one of the anchors it starts near.
    pub const fn after_anchor(self, follows: fn(&[u8], usize, usize) -> bool) -> Rule {
        Rule { follows, ..self }
    }
}

/// A rule whose anchors are found at more places than this is searched for from the first one on, not
/// checked at each: a check at one place may run to the end of a pathological text.
const MOST_CHECKS: usize = 8;

pub struct Redactor {
    /// Every rule's anchors, and the characters of FOLDS_TO_ASCII, found in one scan (ASCII case-insensitive).
    /// Only the rules whose anchors a text holds can match it: one pass over a clean text settles it,
    /// where a search per rule (each with its own prefilter) cost ~1 ns/byte a rule on the bench corpus.
    anchors: Scanner,
    /// Per rule: its whole pattern, to check an admitted rule against the text before it is applied.
    gates: Vec<meta::Regex>,
    /// Per rule: group 1 is the context kept before the secret, group 2 the context kept after it.
    patterns: Vec<meta::Regex>,
    markers: Vec<Vec<u8>>,
}

/// Where a rule's matches in a text may start: anywhere from an offset on, or only at these offsets (ascending).
enum Starts {
    From(usize),
    At(Vec<usize>),
}

/// What FOLDS_TO_ASCII admit: every rule, wherever it is (the bits above the rules' say so).
const ANYWHERE: u64 = u64::MAX;

const _: () = assert!(
    RULES.len() < u64::BITS as usize,
    "one bit a rule, and more for ANYWHERE"
);

impl Redactor {
    pub fn new() -> Self {
        let mut needles: Vec<&str> = Vec::new();
        let mut admits: Vec<u64> = Vec::new();
        let mut located = 0u64;
        for (index, rule) in RULES.iter().enumerate() {
            needles.extend(rule.anchors);
            admits.extend(rule.anchors.iter().map(|_| 1u64 << index));
            located |= u64::from(rule.reach.is_some()) << index;
        }
        needles.extend(FOLDS_TO_ASCII);
        admits.extend(FOLDS_TO_ASCII.map(|_| ANYWHERE));
        let anchors = Scanner::new(&needles, admits, located);
        // Built as regex::bytes::Regex builds them, for searches of a part of a text.
        let compile = |pattern: String| {
            meta::Builder::new()
                .configure(meta::Config::new().utf8_empty(false))
                .syntax(regex_automata::util::syntax::Config::new().utf8(false))
                .build(&pattern)
                .expect("a rule compiles")
        };
        let gates = (RULES.iter())
            .map(|rule| compile(format!("{}{}{}", rule.before, rule.secret, rule.after)))
            .collect();
        let patterns = (RULES.iter())
            .map(|rule| compile(format!("({}){}({})", rule.before, rule.secret, rule.after)))
            .collect();
        let markers = RULES
            .iter()
            .map(|rule| format!("[REDACTED:{}]", rule.name).into_bytes())
            .collect();
        Redactor {
            anchors,
            gates,
            patterns,
            markers,
        }
    }

    /// `text` with every secret replaced; one added to `counts[rule]` per replacement.
    pub fn redact<'a>(&self, text: Cow<'a, str>, counts: &mut [u32; RULES.len()]) -> Cow<'a, str> {
        let found = self.anchors.scan(text.as_bytes());
        // The rules that match the original text apply in order, each to the previous one's result.
        let hits: Vec<(usize, Starts)> = (0..RULES.len())
            .filter(|&index| found.admitted >> index & 1 == 1)
            .filter_map(|index| Some((index, self.starts(index, text.as_bytes(), &found)?)))
            .collect();
        let mut data: Option<Vec<u8>> = None;
        for (index, starts) in hits {
            // Where the original text's matches may start holds until a rule has changed the text.
            let replaced = match &data {
                None => self.substitute(index, text.as_bytes(), &starts, counts),
                Some(changed) => self.substitute(index, changed, &Starts::From(0), counts),
            };
            data = replaced.or(data);
        }
        let Some(data) = data else {
            return text;
        };
        // Matches start and end on character boundaries (the patterns are Unicode-aware).
        Cow::Owned(
            String::from_utf8(data).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        )
    }

    /// None if rule `index`, whose anchors `found` says `text` holds, does not match it; otherwise where its
    /// matches may start.
    fn starts(&self, index: usize, text: &[u8], found: &Found) -> Option<Starts> {
        let gate = &self.gates[index];
        let Some(reach) = RULES[index].reach.filter(|_| found.admitted != ANYWHERE) else {
            return gate.find(text).map(|found| Starts::From(found.start()));
        };
        let follows = RULES[index].follows;
        let starts = || {
            (found.starts.iter())
                .filter(|&&(rule, start, end)| rule == index && follows(text, start, end))
                .map(|&(_, start, _)| start)
        };
        let first = starts().min()?.saturating_sub(reach);
        if starts().nth(MOST_CHECKS).is_some() {
            return gate
                .find(Input::new(text).range(first..))
                .map(|found| Starts::From(found.start()));
        }
        let mut places: Vec<usize> = starts()
            .flat_map(|start| start.saturating_sub(reach)..=start)
            .filter(|&from| gate.is_match(Input::new(text).range(from..).anchored(Anchored::Yes)))
            .collect();
        places.sort_unstable();
        places.dedup();
        (!places.is_empty()).then_some(Starts::At(places))
    }

    /// `data` with rule `index`'s matches replaced, searched for where `starts` says; None if it replaced none.
    fn substitute(
        &self,
        index: usize,
        data: &[u8],
        starts: &Starts,
        counts: &mut [u32; RULES.len()],
    ) -> Option<Vec<u8>> {
        let pattern = &self.patterns[index];
        let matches: Box<dyn Iterator<Item = Captures>> = match starts {
            Starts::From(from) => Box::new(pattern.captures_iter(Input::new(data).range(*from..))),
            Starts::At(places) => {
                // As the search from the first place would find them: the leftmost match, then the next one from
                // its end on (a match anchored at a place is the one a search finds starting there).
                let mut searched = 0;
                Box::new(places.iter().filter_map(move |&at| {
                    if at < searched {
                        return None;
                    }
                    let mut captures = pattern.create_captures();
                    pattern.search_captures(&Input::new(data).range(at..).anchored(Anchored::Yes), &mut captures);
                    searched = captures.get_match()?.end();
                    Some(captures)
                }))
            }
        };
        let mut result = Vec::new();
        let mut position = 0;
        for captures in matches {
            let whole = captures.get_match().expect("a match").span();
            let before = captures.get_group(1).expect("group 1 always takes part");
            let after = captures.get_group(2).expect("group 2 always takes part");
            let quoted = matches!(data[before.range()].last(), Some(b'"' | b'\''));
            if RULES[index].code_aware && !quoted && reads_as_code(&data[before.end..after.start]) {
                continue;
            }
            if result.is_empty() {
                result.reserve(data.len() + self.markers[index].len());
            }
            result.extend_from_slice(&data[position..whole.start]);
            result.extend_from_slice(&data[before.range()]);
            result.extend_from_slice(&self.markers[index]);
            result.extend_from_slice(&data[after.range()]);
            position = whole.end;
            counts[index] += 1;
        }
        if result.is_empty() {
            return None;
        }
        result.extend_from_slice(&data[position..]);
        Some(result)
    }
}
