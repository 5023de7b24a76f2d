//! The curation step's per-line work, for whole batches of lines, without the GIL.
//!
//! finetune_trainer.curate keeps orchestration and I/O (sources, the ordered consumer, the
//! writer, the manifest, the optional tokenizer); everything that costs CPU per line is here:
//! JSON parsing and validation (session.rs), secret redaction (redact.rs), the token estimate,
//! normalisation, exact and near-duplicate hashing, split and cap hashing (hashing.rs), and
//! the output line (jsonout.rs). `Assessor.assess` releases the GIL, so Python threads assess
//! batches in parallel with no inter-process copying; duplicates are decided afterwards, in
//! input order, by `Deduplicator.admit`.

// Each line allocates a few kB-sized buffers (texts, the output line); glibc's allocator spent
// ~15% of the assessment time on them (perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod hashing;
mod jsonout;
mod redact;
mod rules;
mod session;

use std::borrow::Cow;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use hashing::{BANDS, PERMUTATIONS, ROWS, SHINGLE_BYTES};
use redact::{Redactor, RULES};
use session::Invalid;

/// One token per 4 UTF-8 bytes, rounded up (finetune_trainer.curate.tokens).
const BYTES_PER_TOKEN: usize = 4;

// Rejection outcomes, as finetune_trainer.curate.outcomes.Outcome values.
const MALFORMED: &str = "malformed";
const EMPTY: &str = "empty";
const LOW_SUCCESS: &str = "lowSuccess";
const TOO_LONG: &str = "tooLong";
const DUPLICATE: &str = "duplicate";

struct Candidate {
    line: Vec<u8>,
    evaluation: bool,
    cap_key: u64,
    digest: u64,
    band_keys: Option<[u64; BANDS]>,
    redactions: [u32; RULES.len()],
    /// "instruction\ninput\noutput" after redaction, for a tokenizer's count (only when asked for).
    text: Option<String>,
}

enum Assessment {
    Rejected {
        outcome: &'static str,
        detail: String,
        invalid_json: bool,
    },
    Candidate(Box<Candidate>),
}

#[pyclass(frozen, module = "finetune_curate_native")]
struct Assessor {
    min_success_rate: f64,
    eval_fraction: f64,
    near_duplicates: bool,
    max_tokens: Option<u64>,
    keep_texts: bool,
    redactor: Redactor,
}

#[pymethods]
impl Assessor {
    #[new]
    #[pyo3(signature = (min_success_rate, eval_fraction, near_duplicates, max_tokens, keep_texts))]
    fn new(
        min_success_rate: f64,
        eval_fraction: f64,
        near_duplicates: bool,
        max_tokens: Option<u64>,
        keep_texts: bool,
    ) -> Self {
        Assessor {
            min_success_rate,
            eval_fraction,
            near_duplicates,
            max_tokens,
            keep_texts,
            redactor: Redactor::new(),
        }
    }

    /// Assess `block[start:end]`, consecutive lines of `source` (each ends with a newline, but the
    /// file's last one may not), the first of them line `first_number`; the GIL is released meanwhile. A line
    /// longer than `max_line_bytes` is malformed, as when the reader meets one longer than a block.
    #[allow(clippy::too_many_arguments)] // the Python signature; py is pyo3's
    fn assess_block(
        &self,
        py: Python<'_>,
        source: &str,
        first_number: u64,
        block: PyBackedBytes,
        start: usize,
        end: usize,
        max_line_bytes: usize,
    ) -> PyResult<Assessed> {
        if start > end || end > block.len() {
            return Err(PyValueError::new_err("start and end must delimit a part of the block"));
        }
        let (results, ranges) = py.detach(|| {
            let data: &[u8] = &block[..end];
            let (mut results, mut ranges) = (Vec::new(), Vec::new());
            let mut start = start;
            while start < data.len() {
                let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |offset| start + offset);
                let line = &data[start..end];
                results.push(if line.len() > max_line_bytes {
                    Assessment::Rejected {
                        outcome: MALFORMED,
                        detail: format!("line of {} bytes is too long", line.len()),
                        invalid_json: false,
                    }
                } else {
                    self.assess_line(source, first_number + ranges.len() as u64, line)
                });
                ranges.push((start, end));
                start = end + 1;
            }
            (results, ranges)
        });
        Ok(Assessed {
            results: std::sync::Mutex::new(results),
            block,
            ranges,
        })
    }
}

impl Assessor {
    fn assess_line(&self, source: &str, number: u64, raw: &[u8]) -> Assessment {
        let session = match session::parse(raw) {
            Ok(session) => session,
            Err(Invalid::Json(detail)) => {
                return Assessment::Rejected {
                    outcome: MALFORMED,
                    detail,
                    invalid_json: true,
                }
            }
            Err(Invalid::Malformed(detail)) => {
                return Assessment::Rejected {
                    outcome: MALFORMED,
                    detail,
                    invalid_json: false,
                }
            }
            Err(Invalid::Empty(detail)) => {
                return Assessment::Rejected {
                    outcome: EMPTY,
                    detail: detail.into(),
                    invalid_json: false,
                }
            }
        };
        if session.success_rate <= self.min_success_rate {
            return Assessment::Rejected {
                outcome: LOW_SUCCESS,
                detail: String::new(),
                invalid_json: false,
            };
        }
        let mut redactions = [0u32; RULES.len()];
        let instruction = self.redactor.redact(session.instruction, &mut redactions);
        let input = self.redactor.redact(session.input, &mut redactions);
        let output = self.redactor.redact(session.output, &mut redactions);
        let id: &str = &session.id;
        if let Some(limit) = self.max_tokens {
            let bytes = instruction.len() + input.len() + output.len() + 2;
            if !self.keep_texts && bytes.div_ceil(BYTES_PER_TOKEN) as u64 > limit {
                return Assessment::Rejected {
                    outcome: TOO_LONG,
                    detail: String::new(),
                    invalid_json: false,
                };
            }
        }
        let normalised = hashing::normalise(&[&instruction, &input, &output]);
        let mut line = Vec::with_capacity(instruction.len() + input.len() + output.len() + source.len() + 160);
        line.extend_from_slice(b"{\"instruction\":");
        jsonout::string(&mut line, &instruction);
        line.extend_from_slice(b",\"input\":");
        jsonout::string(&mut line, &input);
        line.extend_from_slice(b",\"output\":");
        jsonout::string(&mut line, &output);
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
            digest: hashing::exact_digest(&normalised),
            band_keys: self.near_duplicates.then(|| hashing::band_keys(&normalised)),
            redactions,
            text: self.keep_texts.then(|| format!("{instruction}\n{input}\n{output}")),
            line,
        }))
    }
}

/// The assessment of one batch, line by line; duplicates are not decided yet.
#[pyclass(frozen, module = "finetune_curate_native")]
struct Assessed {
    // Only the consumer thread touches it after `assess_block`; the lock is never contended.
    results: std::sync::Mutex<Vec<Assessment>>,
    block: PyBackedBytes,
    /// Where each line lies in `block` (without its newline).
    ranges: Vec<(usize, usize)>,
}

#[pymethods]
impl Assessed {
    fn __len__(&self) -> usize {
        self.results.lock().expect("not poisoned").len()
    }

    /// The raw bytes of a line (without its newline).
    fn raw<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let &(start, end) = self.ranges.get(index).ok_or_else(|| PyIndexError::new_err(index))?;
        Ok(PyBytes::new(py, &self.block[start..end]))
    }

    /// Rejections decided here (not the reader's), counted by outcome.
    fn rejected<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counts = PyDict::new(py);
        for result in self.results.lock().expect("not poisoned").iter() {
            if let Assessment::Rejected { outcome, .. } = result {
                let count = counts
                    .get_item(*outcome)?
                    .map_or(Ok(0), |count| count.extract::<u64>())?;
                counts.set_item(*outcome, count + 1)?;
            }
        }
        Ok(counts)
    }

    /// The malformed lines, in order: (index in the batch, message, whether the line is not JSON at all).
    fn malformed(&self) -> Vec<(usize, String, bool)> {
        let results = self.results.lock().expect("not poisoned");
        (results.iter().enumerate())
            .filter_map(|(index, result)| match result {
                Assessment::Rejected {
                    outcome: MALFORMED,
                    detail,
                    invalid_json,
                } => Some((index, detail.clone(), *invalid_json)),
                _ => None,
            })
            .collect()
    }

    /// (outcome, detail) of a rejected line; None for a candidate or a line the reader rejected.
    fn outcome(&self, index: usize) -> PyResult<Option<(&'static str, String)>> {
        let results = self.results.lock().expect("not poisoned");
        match results.get(index).ok_or_else(|| PyIndexError::new_err(index))? {
            Assessment::Rejected { outcome, detail, .. } => Ok(Some((outcome, detail.clone()))),
            _ => Ok(None),
        }
    }

    /// A candidate's (line, is eval, cap key, exact digest, band keys, redactions); None if rejected.
    #[allow(clippy::type_complexity)]
    fn candidate<'py>(
        &self,
        py: Python<'py>,
        index: usize,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, bool, u64, u64, Vec<u64>, Bound<'py, PyDict>)>> {
        let results = self.results.lock().expect("not poisoned");
        match results.get(index).ok_or_else(|| PyIndexError::new_err(index))? {
            Assessment::Candidate(candidate) => Ok(Some((
                PyBytes::new(py, &candidate.line),
                candidate.evaluation,
                candidate.cap_key,
                candidate.digest,
                candidate.band_keys.map_or_else(Vec::new, |keys| keys.to_vec()),
                redaction_counts(py, &candidate.redactions.map(u64::from))?,
            ))),
            _ => Ok(None),
        }
    }

    /// (index, "instruction\ninput\noutput") of each candidate, when the Assessor keeps texts.
    fn texts(&self) -> Vec<(usize, String)> {
        let results = self.results.lock().expect("not poisoned");
        (results.iter().enumerate())
            .filter_map(|(index, result)| match result {
                Assessment::Candidate(candidate) => candidate.text.clone().map(|text| (index, text)),
                _ => None,
            })
            .collect()
    }

    /// Reject a candidate as too long (a tokenizer counted more than maxTokens).
    fn reject_too_long(&self, index: usize) -> PyResult<()> {
        let mut results = self.results.lock().expect("not poisoned");
        let result = results.get_mut(index).ok_or_else(|| PyIndexError::new_err(index))?;
        if !matches!(result, Assessment::Candidate(_)) {
            return Err(PyValueError::new_err(format!("line {index} is not a candidate")));
        }
        *result = Assessment::Rejected {
            outcome: TOO_LONG,
            detail: String::new(),
            invalid_json: false,
        };
        Ok(())
    }
}

/// Kept samples as (is eval, line, cap key), their redactions by rule, and how many were duplicates.
type Admitted<'py> = (Vec<(bool, Bound<'py, PyBytes>, u64)>, Bound<'py, PyDict>, u64);

#[pyclass(module = "finetune_curate_native")]
struct Deduplicator {
    inner: hashing::Deduplicator,
}

#[pymethods]
impl Deduplicator {
    #[new]
    fn new() -> Self {
        Deduplicator {
            inner: hashing::Deduplicator::new(),
        }
    }

    #[getter]
    fn exact_hits(&self) -> u64 {
        self.inner.exact_hits
    }

    #[getter]
    fn near_hits(&self) -> u64 {
        self.inner.near_hits
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    fn is_duplicate(&mut self, digest: u64, keys: Vec<u64>) -> bool {
        self.inner.is_duplicate(digest, &keys)
    }

    /// Decide the batch's candidates in order. Returns the kept samples as (is eval, line, cap
    /// key), the secrets redacted in them by rule, and how many candidates were duplicates.
    fn admit<'py>(&mut self, py: Python<'py>, assessed: &Assessed) -> PyResult<Admitted<'py>> {
        let results = assessed.results.lock().expect("not poisoned");
        let mut kept = Vec::with_capacity(results.len());
        let mut redactions = [0u64; RULES.len()];
        let mut duplicates = 0;
        for result in results.iter() {
            let Assessment::Candidate(candidate) = result else {
                continue;
            };
            let keys = candidate.band_keys.as_ref().map_or(&[][..], |keys| &keys[..]);
            if self.inner.is_duplicate(candidate.digest, keys) {
                duplicates += 1;
                continue;
            }
            kept.push((
                candidate.evaluation,
                PyBytes::new(py, &candidate.line),
                candidate.cap_key,
            ));
            for (total, count) in redactions.iter_mut().zip(candidate.redactions) {
                *total += u64::from(count);
            }
        }
        Ok((kept, redaction_counts(py, &redactions.map(u64::from))?, duplicates))
    }
}

fn redaction_counts<'py>(py: Python<'py>, counts: &[u64; RULES.len()]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (rule, &count) in RULES.iter().zip(counts) {
        if count > 0 {
            dict.set_item(rule.name, count)?;
        }
    }
    Ok(dict)
}

#[pyclass(module = "finetune_curate_native")]
struct CompactSet {
    inner: hashing::CompactSet,
}

#[pymethods]
impl CompactSet {
    #[new]
    #[pyo3(signature = (capacity = 1 << 16))]
    fn new(capacity: usize) -> PyResult<Self> {
        if !capacity.is_power_of_two() {
            return Err(PyValueError::new_err("capacity must be a power of two"));
        }
        Ok(CompactSet {
            inner: hashing::CompactSet::new(capacity),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, key: u64) -> bool {
        self.inner.contains(key)
    }

    fn add(&mut self, key: u64) {
        self.inner.add(key)
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }
}

/// `text` with every secret replaced, and the replacements by rule.
#[pyfunction]
#[pyo3(name = "redact")]
fn redact_text<'py>(py: Python<'py>, text: String) -> PyResult<(String, Bound<'py, PyDict>)> {
    let redactor = REDACTOR.get_or_init(Redactor::new);
    let mut counts = [0u32; RULES.len()];
    let redacted = redactor.redact(Cow::Owned(text), &mut counts).into_owned();
    Ok((redacted, redaction_counts(py, &counts.map(u64::from))?))
}

static REDACTOR: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();

#[pyfunction]
#[pyo3(signature = (*fields))]
fn normalise<'py>(py: Python<'py>, fields: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyBytes>> {
    let fields: Vec<String> = fields.extract()?;
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    Ok(PyBytes::new(py, &hashing::normalise(&fields)))
}

/// How many lines `block[start:end]` holds: its newlines, plus a last line without one.
#[pyfunction]
fn count_lines(block: &[u8], start: usize, end: usize) -> PyResult<usize> {
    let part = block
        .get(start..end)
        .ok_or_else(|| PyValueError::new_err("start and end must delimit a part"))?;
    Ok(memchr::memchr_iter(b'\n', part).count() + usize::from(part.last().is_some_and(|&byte| byte != b'\n')))
}

#[pyfunction]
fn exact_digest(normalised: &[u8]) -> u64 {
    hashing::exact_digest(normalised)
}

#[pyfunction]
fn signature(text: &[u8]) -> Vec<u64> {
    hashing::signature(text).to_vec()
}

#[pyfunction]
fn band_keys(texts: Vec<PyBackedBytes>) -> Vec<Vec<u64>> {
    texts.iter().map(|text| hashing::band_keys(text).to_vec()).collect()
}

#[pyfunction]
fn is_eval(session_id: &str, eval_fraction: f64) -> bool {
    hashing::is_eval(session_id, eval_fraction)
}

#[pyfunction]
fn cap_key(session_id: &str) -> u64 {
    hashing::cap_key(session_id)
}

/// mimalloc's `mi_option_allow_large_os_pages` (6 in both versions of its header; the binding names no constant).
const MI_OPTION_ALLOW_LARGE_OS_PAGES: libmimalloc_sys::mi_option_t = 6;

#[pymodule(gil_used = false)]
fn finetune_curate_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // No transparent huge pages for the allocator's memory: every fresh 2 MB page is zeroed whole when
    // first touched, and the batches' buffers kept touching fresh ones (perf: ~5% of a run's CPU time
    // in the kernel's page clearing; ~1% with this).
    // SAFETY: sets a process-wide allocator option; any value is valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_LARGE_OS_PAGES, 0) };
    module.add_class::<Assessor>()?;
    module.add_class::<Assessed>()?;
    module.add_class::<Deduplicator>()?;
    module.add_class::<CompactSet>()?;
    module.add_function(wrap_pyfunction!(redact_text, module)?)?;
    module.add_function(wrap_pyfunction!(normalise, module)?)?;
    module.add_function(wrap_pyfunction!(exact_digest, module)?)?;
    module.add_function(wrap_pyfunction!(count_lines, module)?)?;
    module.add_function(wrap_pyfunction!(signature, module)?)?;
    module.add_function(wrap_pyfunction!(band_keys, module)?)?;
    module.add_function(wrap_pyfunction!(is_eval, module)?)?;
    module.add_function(wrap_pyfunction!(cap_key, module)?)?;
    module.add("RULE_NAMES", RULES.iter().map(|rule| rule.name).collect::<Vec<_>>())?;
    module.add("SHINGLE_BYTES", SHINGLE_BYTES)?;
    module.add("BANDS", BANDS)?;
    module.add("ROWS", ROWS)?;
    module.add("PERMUTATIONS", PERMUTATIONS)?;
    module.add("BYTES_PER_TOKEN", BYTES_PER_TOKEN)?;
    module.add("DUPLICATE", DUPLICATE)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
