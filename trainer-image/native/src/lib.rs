//! The curation step's per-line work, for whole batches of lines, without the GIL.
//!
//! finetune_trainer.curate keeps orchestration and I/O (sources, the ordered consumer, the
//! writer, the manifest, the optional tokenizer); everything that costs CPU per line is here
//! (assess.rs): JSON parsing and validation (record.rs, session.rs; conversations in conversation.rs and chat.rs), secret redaction (redact.rs, the rules in
//! rules.rs), the token estimate, normalisation, exact and near-duplicate hashing, split and cap
//! hashing (hashing.rs), and the output line (jsonout.rs). `Assessor.assess_block` (pyclasses.rs)
//! releases the GIL, so Python threads assess batches in parallel with no inter-process copying;
//! duplicates are decided afterwards, in input order, by `Deduplicator.admit`. This file holds the
//! module and its functions.

// Each line allocates a few kB-sized buffers (texts, the output line); glibc's allocator spent
// ~15% of the assessment time on them (perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod anchor_filter;
mod anchors;
mod assess;
mod chat;
mod code_values;
mod conversation;
mod follows;
mod hashing;
mod jsonout;
mod pyclasses;
mod record;
mod redact;
mod rules;
mod session;
mod turns;

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use assess::{BYTES_PER_TOKEN, DUPLICATE};
use hashing::{BANDS, PERMUTATIONS, ROWS, SHINGLE_BYTES};
use pyclasses::{redaction_counts, Assessed, Assessor, CompactSet, Deduplicator};
use redact::{Redactor, RULES};

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
