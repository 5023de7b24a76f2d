//! Normalised text, exact digests, one-permutation MinHash band keys, split and cap hashes.
//!
//! Every value here is bit-for-bit what the earlier numpy/hashlib implementation produced
//! (tests/unit/curation/oracle.py keeps it as the reference), so a dataset curated
//! before keeps its split, its cap and its duplicate decisions.

use sha2::{Digest, Sha256};

pub const SHINGLE_BYTES: usize = 8;
pub const BANDS: usize = 10;
pub const ROWS: usize = 6;
pub const PERMUTATIONS: usize = BANDS * ROWS;
/// The hash space is cut into 64 bins (the top 6 bits); the first PERMUTATIONS are used.
const BINS: usize = 64;
const BIN_SHIFT: u32 = 64 - 6;
const EMPTY: u64 = u64::MAX;
/// 2**64 / golden ratio, odd.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
/// numpy.random.default_rng(0x5EED): 6 odd row weights, then 10 band salts (as first drawn).
const ROW_WEIGHTS: [u64; ROWS] = [
    0x234f4e02517bbefd,
    0xfd7e720fafb23633,
    0x38f684eab9e346c1,
    0xa146dd2c5d05c905,
    0x7cfe7917356635af,
    0x1b003dc733167455,
];
const BAND_SALTS: [u64; BANDS] = [
    0x65c878b2b7d7ca7e,
    0x0721dac39e15a7cb,
    0x565da069aa871fc1,
    0x0f00bb0321dfd1be,
    0x32ad1428494b22d3,
    0x3c1669539651ab91,
    0x053c5b18d622e84a,
    0x5582c8864dc75dec,
    0x4b15a3d89f018c08,
    0x49e10e3520c76119,
];

/// Byte -> its ASCII lowercase, or SKIP for ASCII whitespace (0xFF never occurs in UTF-8).
const SKIP: u8 = 0xFF;
const NORMALISED: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => SKIP,
            other => other.to_ascii_lowercase(),
        };
        byte += 1;
    }
    table
};

/// ASCII-lowercased UTF-8 with all ASCII whitespace removed; fields stay apart (NUL-separated).
pub fn normalise(fields: &[&str]) -> Vec<u8> {
    let capacity: usize = fields.iter().map(|field| field.len() + 1).sum();
    let mut out: Vec<u8> = Vec::with_capacity(capacity);
    let spare = out.spare_capacity_mut();
    let mut length = 0;
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            spare[length].write(0);
            length += 1;
        }
        // Branch-free: every byte is written, whitespace is then overwritten by the next one.
        for &byte in field.as_bytes() {
            let mapped = NORMALISED[byte as usize];
            spare[length].write(mapped);
            length += usize::from(mapped != SKIP);
        }
    }
    // SAFETY: bytes 0..length were all written above (each position before `length` advanced past it).
    unsafe { out.set_len(length) };
    out
}

/// The first 8 bytes of the SHA-256, little-endian.
pub fn exact_digest(normalised: &[u8]) -> u64 {
    let digest = Sha256::digest(normalised);
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn mix(value: u64) -> u64 {
    let hashed = value.wrapping_mul(MULTIPLIER);
    hashed ^ (hashed >> 32)
}

/// One-permutation MinHash of the text's byte 8-grams (texts shorter than 8 bytes are NUL-padded);
/// empty bins borrow the next filled bin's value, wrapping around (rotation densification).
pub fn signature(text: &[u8]) -> [u64; PERMUTATIONS] {
    let mut minima = [EMPTY; BINS];
    let mut padded = [0u8; SHINGLE_BYTES];
    let text = if text.len() < SHINGLE_BYTES {
        padded[..text.len()].copy_from_slice(text);
        &padded[..]
    } else {
        text
    };
    for start in 0..=text.len() - SHINGLE_BYTES {
        let window: [u8; SHINGLE_BYTES] = text[start..start + SHINGLE_BYTES].try_into().expect("8 bytes");
        let hashed = mix(u64::from_le_bytes(window));
        let bin = (hashed >> BIN_SHIFT) as usize;
        minima[bin] = minima[bin].min(hashed);
    }
    if minima.contains(&EMPTY) {
        let filled: Vec<usize> = (0..BINS).filter(|&bin| minima[bin] != EMPTY).collect();
        if !filled.is_empty() {
            let source = minima;
            for (bin, value) in minima.iter_mut().enumerate() {
                let next = filled.partition_point(|&candidate| candidate < bin);
                *value = source[filled[next % filled.len()]];
            }
        }
    }
    minima[..PERMUTATIONS].try_into().expect("PERMUTATIONS <= BINS")
}

/// BANDS 64-bit keys: each band of ROWS signature values folded into one word.
pub fn band_keys(normalised: &[u8]) -> [u64; BANDS] {
    let signature = signature(normalised);
    let mut keys = [0u64; BANDS];
    for (band, key) in keys.iter_mut().enumerate() {
        let folded = signature[band * ROWS..(band + 1) * ROWS]
            .iter()
            .zip(ROW_WEIGHTS)
            .fold(0u64, |sum, (value, weight)| {
                sum.wrapping_add(value.wrapping_mul(weight))
            });
        *key = mix(folded.wrapping_add(BAND_SALTS[band]));
    }
    keys
}

fn id_hash(session_id: &str, purpose: &[u8]) -> u64 {
    let hash = blake2b_simd::Params::new()
        .hash_length(8)
        .personal(purpose)
        .hash(session_id.as_bytes());
    u64::from_le_bytes(hash.as_bytes().try_into().expect("8 bytes"))
}

/// Whether the session goes to eval: its split hash is below `eval_fraction` of the hash space.
pub fn is_eval(session_id: &str, eval_fraction: f64) -> bool {
    // Python compares the integer with the float exactly: h < t  <=>  h < ceil(t) for 0 < t < 2**64.
    let threshold = eval_fraction * 18_446_744_073_709_551_616.0;
    if threshold.is_nan() || threshold <= 0.0 {
        return false;
    }
    if threshold >= 18_446_744_073_709_551_616.0 {
        return true;
    }
    (id_hash(session_id, b"finetune-split") as u128) < threshold.ceil() as u128
}

pub fn cap_key(session_id: &str) -> u64 {
    id_hash(session_id, b"finetune-cap")
}

/// A set of 64-bit hashes in one flat table (open addressing, linear probing): 8-16 bytes a key.
pub struct CompactSet {
    slots: Vec<u64>,
    size: usize,
}

impl CompactSet {
    pub fn new(capacity: usize) -> Self {
        CompactSet {
            slots: vec![0; capacity],
            size: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.size
    }

    pub fn nbytes(&self) -> usize {
        self.slots.len() * 8
    }

    /// The slot holding `key`, or the empty slot where it would go. Keys are uniformly
    /// mixed hashes, so their low bits index the table directly; 0 marks an empty slot.
    fn find(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut index = key as usize & mask;
        loop {
            let value = self.slots[index];
            if value == key || value == 0 {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    pub fn contains(&self, key: u64) -> bool {
        let key = key.max(1);
        self.slots[self.find(key)] == key
    }

    pub fn add(&mut self, key: u64) {
        let key = key.max(1);
        let index = self.find(key);
        if self.slots[index] == key {
            return;
        }
        self.slots[index] = key;
        self.size += 1;
        // Up to 3/4 full: misses (most lookups) then probe ~3 slots on average between doublings.
        if self.size * 4 > self.slots.len() * 3 {
            let doubled = vec![0; 2 * self.slots.len()];
            let old = std::mem::replace(&mut self.slots, doubled);
            for key in old.into_iter().filter(|&key| key != 0) {
                let index = self.find(key);
                self.slots[index] = key;
            }
        }
    }
}

/// First occurrence wins: later exact or near copies of a kept session are duplicates.
pub struct Deduplicator {
    exact: CompactSet,
    bands: CompactSet,
    pub exact_hits: u64,
    pub near_hits: u64,
}

impl Deduplicator {
    pub fn new() -> Self {
        Deduplicator {
            exact: CompactSet::new(1 << 16),
            bands: CompactSet::new(1 << 16),
            exact_hits: 0,
            near_hits: 0,
        }
    }

    pub fn nbytes(&self) -> usize {
        self.exact.nbytes() + self.bands.nbytes()
    }

    /// Check a session (its exact digest and near-duplicate band keys); remember it if new.
    pub fn is_duplicate(&mut self, digest: u64, keys: &[u64]) -> bool {
        if self.exact.contains(digest) {
            self.exact_hits += 1;
            return true;
        }
        if keys.iter().any(|&key| self.bands.contains(key)) {
            self.near_hits += 1;
            return true;
        }
        self.exact.add(digest);
        for &key in keys {
            self.bands.add(key);
        }
        false
    }
}
