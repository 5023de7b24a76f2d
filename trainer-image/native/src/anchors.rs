//! Redaction's first pass: which rules' anchors a text holds and, for the rules that ask, where they start.
//!
//! On CPUs with AVX-512 VBMI, anchor_filter.rs finds them (~1 ns/byte on the bench corpus's texts). Elsewhere one
//! DFA holds every rule's anchors (ASCII case-insensitive), ~2 ns/byte. The text is walked as four interleaved
//! streams (its quarters, each starting early enough to see an anchor that straddles the boundary): a DFA
//! step is a load that depends on the previous one, and four independent chains keep the core busy where one
//! left it waiting (2.15 ns/byte as one `find_overlapping_iter`). No prefilter of aho-corasick's applies: the
//! anchors start with almost any letter. Both find the same anchors at the same places.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, PatternID, StartKind};

use crate::anchor_filter::Filter;

/// Texts shorter than this are walked as one stream.
const INTERLEAVED_FROM: usize = 1024;

pub struct Scanner {
    dfa: DFA,
    start: StateID,
    /// Per pattern: the rules it admits, one bit a rule.
    admits: Vec<u64>,
    /// The rules whose anchors' positions are recorded, one bit a rule.
    located: u64,
    /// Where the CPU runs it, the filter that finds the same anchors as the DFA at a fraction of its cost.
    filter: Option<Filter>,
}

/// What a scan found in a text.
pub struct Found {
    /// The rules whose anchors the text holds, one bit a rule.
    pub admitted: u64,
    /// Where the anchors of the located rules lie, as (rule, start, end); an anchor may be listed twice.
    pub starts: Vec<(usize, usize, usize)>,
}

impl Scanner {
    /// `needles[i]` admits the rules of `admits[i]`.
    pub fn new(needles: &[&str], admits: Vec<u64>, located: u64) -> Self {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .build(needles)
            .expect("the anchors build");
        let start = dfa.start_state(Anchored::No).expect("an unanchored start state");
        Scanner {
            dfa,
            start,
            admits,
            located,
            filter: Filter::new(needles),
        }
    }

    pub fn scan(&self, text: &[u8]) -> Found {
        let mut found = Found {
            admitted: 0,
            starts: Vec::new(),
        };
        if let Some(filter) = &self.filter {
            filter.scan(text, |pattern, start, end| self.note(pattern, start, end, &mut found));
            return found;
        }
        if text.len() < INTERLEAVED_FROM {
            self.walk(text, 0, text.len(), &mut found);
            return found;
        }
        let overlap = self.dfa.max_pattern_len() - 1;
        let quarter = text.len().div_ceil(4);
        let begin: [usize; 4] = std::array::from_fn(|k| (k * quarter).saturating_sub(overlap));
        let end: [usize; 4] = std::array::from_fn(|k| ((k + 1) * quarter).min(text.len()));
        let common = (0..4).map(|k| end[k] - begin[k]).min().expect("four streams");
        let streams: [&[u8]; 4] = std::array::from_fn(|k| &text[begin[k]..begin[k] + common]);
        let mut states = [self.start; 4];
        for (offset, (((&a, &b), &c), &d)) in
            (streams[0].iter().zip(streams[1]).zip(streams[2]).zip(streams[3])).enumerate()
        {
            for (k, byte) in [a, b, c, d].into_iter().enumerate() {
                states[k] = self.dfa.next_state(Anchored::No, states[k], byte);
                if self.dfa.is_special(states[k]) {
                    self.record(states[k], begin[k] + offset + 1, &mut found);
                }
            }
        }
        for k in 0..4 {
            self.resume(text, states[k], begin[k] + common, end[k], &mut found);
        }
        found
    }

    fn walk(&self, text: &[u8], from: usize, to: usize, found: &mut Found) {
        self.resume(text, self.start, from, to, found);
    }

    fn resume(&self, text: &[u8], mut state: StateID, from: usize, to: usize, found: &mut Found) {
        for (at, &byte) in text[from..to].iter().enumerate() {
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_special(state) {
                self.record(state, from + at + 1, found);
            }
        }
    }

    /// The matches of `state`, a special state reached after the byte before `end`.
    #[cold]
    fn record(&self, state: StateID, end: usize, found: &mut Found) {
        if !self.dfa.is_match(state) {
            return;
        }
        for index in 0..self.dfa.match_len(state) {
            let pattern: PatternID = self.dfa.match_pattern(state, index);
            self.note(pattern.as_usize(), end - self.dfa.pattern_len(pattern), end, found);
        }
    }

    /// Pattern `pattern` occurs at `start..end`.
    fn note(&self, pattern: usize, start: usize, end: usize, found: &mut Found) {
        let rules = self.admits[pattern];
        found.admitted |= rules;
        let mut located = rules & self.located;
        while located != 0 {
            found.starts.push((located.trailing_zeros() as usize, start, end));
            located &= located - 1;
        }
    }
}
