//! A line's assessment, the pure part of the curation step: parse and validate it (session.rs), reject it
//! on success rate or length, redact its texts (redact.rs), hash it for the split, the cap and
//! deduplication (hashing.rs), and serialise the sample (jsonout.rs). Duplicates are decided later, in
//! input order, by the Deduplicator.

use std::borrow::Cow;

use crate::chat;
use crate::conversation::Conversation;
use crate::hashing::{self, BANDS};
use crate::jsonout;
use crate::redact::{Redactor, RULES};
use crate::session::{self, Body, Invalid};

/// One token per 4 UTF-8 bytes, rounded up (finetune_trainer.curate.tokens).
pub const BYTES_PER_TOKEN: usize = 4;

// Rejection outcomes, as finetune_trainer.curate.outcomes.Outcome values.
pub const MALFORMED: &str = "malformed";
pub const EMPTY: &str = "empty";
pub const LOW_SUCCESS: &str = "lowSuccess";
pub const TOO_LONG: &str = "tooLong";
pub const DUPLICATE: &str = "duplicate";

pub struct Candidate {
    pub line: Vec<u8>,
    pub evaluation: bool,
    pub cap_key: u64,
    pub digest: u64,
    pub band_keys: Option<[u64; BANDS]>,
    pub redactions: [u32; RULES.len()],
    /// The redacted text maxTokens judges ("instruction\ninput\noutput", or a conversation's texts and tool
    /// definitions), for a tokenizer's count (only when asked for).
    pub text: Option<String>,
}

pub enum Assessment {
    Rejected {
        outcome: &'static str,
        detail: String,
        invalid_json: bool,
    },
    Candidate(Box<Candidate>),
}

impl Assessment {
    fn rejected(outcome: &'static str, detail: String) -> Self {
        Assessment::Rejected {
            outcome,
            detail,
            invalid_json: false,
        }
    }
}

/// What a line must meet to become a candidate, and what to compute for it.
pub struct Criteria {
    pub min_success_rate: f64,
    pub eval_fraction: f64,
    pub near_duplicates: bool,
    pub max_tokens: Option<u64>,
    pub keep_texts: bool,
    /// Write chat records (`curation.format: chat`), else instruction records.
    pub chat: bool,
    pub redactor: Redactor,
}

impl Criteria {
    /// Assess the lines of `data[start..]` (each ends with a newline, but the last one may not), the first of
    /// them line `first_number` of `source`; a line longer than `max_line_bytes` is malformed, as when the
    /// reader meets one longer than a block. Returns the assessments and where each line lies in `data`.
    pub fn assess_lines(
        &self,
        source: &str,
        first_number: u64,
        data: &[u8],
        start: usize,
        max_line_bytes: usize,
    ) -> (Vec<Assessment>, Vec<(usize, usize)>) {
        let (mut results, mut ranges) = (Vec::new(), Vec::new());
        let mut start = start;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |offset| start + offset);
            let line = &data[start..end];
            results.push(if line.len() > max_line_bytes {
                Assessment::rejected(MALFORMED, format!("line of {} bytes is too long", line.len()))
            } else {
                self.assess_line(source, first_number + ranges.len() as u64, line)
            });
            ranges.push((start, end));
            start = end + 1;
        }
        (results, ranges)
    }

    fn assess_line(&self, source: &str, number: u64, raw: &[u8]) -> Assessment {
        let session = match session::parse(raw, self.chat) {
            Ok(session) => session,
            Err(Invalid::Json(detail)) => {
                return Assessment::Rejected {
                    outcome: MALFORMED,
                    detail,
                    invalid_json: true,
                }
            }
            Err(Invalid::Malformed(detail)) => return Assessment::rejected(MALFORMED, detail),
            Err(Invalid::Empty(detail)) => return Assessment::rejected(EMPTY, detail.into()),
            Err(Invalid::Conversation(outcome, detail)) => return Assessment::rejected(outcome, detail),
        };
        if session.success_rate <= self.min_success_rate {
            return Assessment::rejected(LOW_SUCCESS, String::new());
        }
        let mut redactions = [0u32; RULES.len()];
        let sample = match session.body {
            Body::Fields {
                instruction,
                input,
                output,
            } => self.fields_sample(instruction, input, output, &mut redactions),
            Body::Chat(conversation) => self.chat_sample(conversation, &mut redactions),
        };
        if let Some(limit) = self.max_tokens {
            if !self.keep_texts && sample.counted_bytes.div_ceil(BYTES_PER_TOKEN) as u64 > limit {
                return Assessment::rejected(TOO_LONG, String::new());
            }
        }
        let id: &str = &session.id;
        let mut line = sample.line;
        line.extend_from_slice(b",\"metadata\":{\"session_id\":");
        jsonout::string(&mut line, id);
        line.extend_from_slice(b",\"success_rate\":");
        jsonout::float(&mut line, session.success_rate);
        line.extend_from_slice(b",\"source\":");
        jsonout::string(&mut line, source);
        line.extend_from_slice(format!(",\"line\":{number}}}}}\n").as_bytes());
        Assessment::Candidate(Box::new(Candidate {
            evaluation: hashing::is_eval(id, self.eval_fraction),
            cap_key: hashing::cap_key(id),
            digest: hashing::exact_digest(&sample.normalised),
            band_keys: self.near_duplicates.then(|| hashing::band_keys(&sample.normalised)),
            redactions,
            text: sample.counted_text,
            line,
        }))
    }

    fn fields_sample(
        &self,
        instruction: Cow<'_, str>,
        input: Cow<'_, str>,
        output: Cow<'_, str>,
        redactions: &mut [u32; RULES.len()],
    ) -> Sample {
        let instruction = self.redactor.redact(instruction, redactions);
        let input = self.redactor.redact(input, redactions);
        let output = self.redactor.redact(output, redactions);
        let mut line = Vec::with_capacity(instruction.len() + input.len() + output.len() + 200);
        line.extend_from_slice(b"{\"instruction\":");
        jsonout::string(&mut line, &instruction);
        line.extend_from_slice(b",\"input\":");
        jsonout::string(&mut line, &input);
        line.extend_from_slice(b",\"output\":");
        jsonout::string(&mut line, &output);
        Sample {
            normalised: hashing::normalise(&[&instruction, &input, &output]),
            counted_bytes: instruction.len() + input.len() + output.len() + 2,
            counted_text: self.keep_texts.then(|| format!("{instruction}\n{input}\n{output}")),
            line,
        }
    }

    fn chat_sample(&self, conversation: Conversation, redactions: &mut [u32; RULES.len()]) -> Sample {
        let sample = chat::sample(conversation, &self.redactor, redactions);
        let texts: Vec<&str> = sample.texts.iter().map(String::as_str).collect();
        Sample {
            normalised: hashing::normalise(&texts),
            counted_bytes: sample.counted_bytes(),
            counted_text: self.keep_texts.then(|| sample.counted_text()),
            line: sample.line,
        }
    }
}

/// A candidate's sample before its metadata: the line's start, the texts it is judged on.
struct Sample {
    /// The record up to (not including) `,"metadata":...}`.
    line: Vec<u8>,
    normalised: Vec<u8>,
    /// UTF-8 bytes of the text maxTokens judges (the byte estimate).
    counted_bytes: usize,
    /// That text, when a tokenizer counts it (keep_texts).
    counted_text: Option<String>,
}
