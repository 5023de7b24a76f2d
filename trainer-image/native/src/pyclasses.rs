//! The Python classes: the Assessor (batches of lines assessed without the GIL), their Assessed results,
//! and the Deduplicator and CompactSet over hashing.rs.

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

use crate::assess::{Assessment, Criteria, MALFORMED, TOO_LONG};
use crate::conversation;
use crate::hashing;
use crate::redact::{Redactor, RULES};

#[pyclass(frozen, module = "finetune_curate_native")]
pub struct Assessor {
    criteria: Criteria,
}

#[pymethods]
impl Assessor {
    #[new]
    #[pyo3(signature = (min_success_rate, eval_fraction, near_duplicates, max_tokens, keep_texts, chat = false))]
    fn new(
        min_success_rate: f64,
        eval_fraction: f64,
        near_duplicates: bool,
        max_tokens: Option<u64>,
        keep_texts: bool,
        chat: bool,
    ) -> Self {
        Assessor {
            criteria: Criteria {
                min_success_rate,
                eval_fraction,
                near_duplicates,
                max_tokens,
                keep_texts,
                chat,
                redactor: Redactor::new(),
            },
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
            self.criteria
                .assess_lines(source, first_number, &block[..end], start, max_line_bytes)
        });
        Ok(Assessed {
            results: std::sync::Mutex::new(results),
            block,
            ranges,
        })
    }
}

/// The assessment of one batch, line by line; duplicates are not decided yet.
#[pyclass(frozen, module = "finetune_curate_native")]
pub struct Assessed {
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

    /// The lines a conversation's defect rejected (chat format), in order: (index in the batch, outcome, message).
    fn conversation_rejections(&self) -> Vec<(usize, &'static str, String)> {
        let results = self.results.lock().expect("not poisoned");
        (results.iter().enumerate())
            .filter_map(|(index, result)| match result {
                Assessment::Rejected { outcome, detail, .. } if conversation::OUTCOMES.contains(outcome) => {
                    Some((index, *outcome, detail.clone()))
                }
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

    /// (index, the text maxTokens judges) of each candidate, when the Assessor keeps texts.
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
pub struct Deduplicator {
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

pub fn redaction_counts<'py>(py: Python<'py>, counts: &[u64; RULES.len()]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (rule, &count) in RULES.iter().zip(counts) {
        if count > 0 {
            dict.set_item(rule.name, count)?;
        }
    }
    Ok(dict)
}

#[pyclass(module = "finetune_curate_native")]
pub struct CompactSet {
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
