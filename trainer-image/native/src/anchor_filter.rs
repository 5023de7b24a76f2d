//! Redaction's first pass on CPUs with AVX-512 VBMI: a SIMD filter finds, 64 positions at a time, the few places
//! where an anchor may start, and only there are the anchors compared with the text (anchors.rs's DFA takes a
//! dependent table step per byte, ~2 ns/byte on the bench corpus).
//!
//! The anchors are grouped into BUCKETS buckets. For each of an anchor's first WIDTH bytes, a 128-entry table says
//! which buckets hold an anchor with that byte there; bytes are looked up as the low 7 bits of `byte | 0x20`, so
//! ASCII letters of either case share an entry (other bytes share entries too, which only admits more places). Past
//! an anchor's end its bucket admits any byte. A place is a candidate when one bucket passes all WIDTH tables; each
//! anchor of the passing buckets is then compared there, ASCII case aside, as the DFA matches it. Unlike nibble
//! tables (Teddy: the high nibble of a letter tells little, and was 3-4x slower than the DFA here), a whole byte
//! per lookup keeps the candidates rare, and the buckets are chosen to keep them so (`group`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The bytes of each anchor the tables test.
const WIDTH: usize = 4;
/// Tables of 8 buckets (a byte of bits) each.
const SETS: usize = 4;
const BUCKETS: usize = 8 * SETS;
const LANES: usize = 64;

pub struct Filter {
    /// tables[set][byte of the anchor][folded byte]: the buckets (of the set) that admit it.
    tables: [[[u8; 128]; WIDTH]; SETS],
    /// Per bucket: the indices of its anchors.
    buckets: Vec<Vec<usize>>,
    needles: Vec<Vec<u8>>,
    /// Per needle: its first WIDTH bytes as the tables see them, and which of those it has (`prefix`).
    prefixes: Vec<(u32, u32)>,
}

/// The table entry of a byte (see the module's comment).
fn folded(byte: u8) -> usize {
    usize::from((byte | 0x20) & 0x7f)
}

impl Filter {
    /// The filter for `needles`, if this CPU runs it.
    pub fn new(needles: &[&str]) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi")
        {
            return Some(Self::build(needles));
        }
        let _ = needles;
        None
    }

    fn build(needles: &[&str]) -> Self {
        let needles: Vec<Vec<u8>> = needles.iter().map(|needle| needle.as_bytes().to_vec()).collect();
        let buckets = group(&needles);
        let mut tables = [[[0u8; 128]; WIDTH]; SETS];
        for (bucket, members) in buckets.iter().enumerate() {
            let (set, bit) = (bucket / 8, 1u8 << (bucket % 8));
            for &member in members {
                for (position, table) in tables[set].iter_mut().enumerate() {
                    match needles[member].get(position) {
                        Some(&byte) => table[folded(byte)] |= bit,
                        None => table.iter_mut().for_each(|entry| *entry |= bit),
                    }
                }
            }
        }
        let prefixes = needles.iter().map(|needle| prefix(needle)).collect();
        Filter {
            tables,
            buckets,
            needles,
            prefixes,
        }
    }

    /// Calls `found(needle, start, end)` for every place where a needle occurs in `text` (ASCII case aside).
    pub fn scan(&self, text: &[u8], found: impl FnMut(usize, usize, usize)) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a Filter exists only where `new` saw the CPU features `candidates` is compiled for.
        unsafe {
            self.candidates(text, found)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (text, found);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn candidates(&self, text: &[u8], mut found: impl FnMut(usize, usize, usize)) {
        let (mut low, mut high) = (
            [[_mm512_setzero_si512(); WIDTH]; SETS],
            [[_mm512_setzero_si512(); WIDTH]; SETS],
        );
        for set in 0..SETS {
            for j in 0..WIDTH {
                let table = self.tables[set][j].as_ptr();
                // SAFETY: the two 64-byte halves of a 128-byte table.
                (low[set][j], high[set][j]) = unsafe {
                    (
                        _mm512_loadu_si512(table.cast()),
                        _mm512_loadu_si512(table.add(LANES).cast()),
                    )
                };
            }
        }
        let case = _mm512_set1_epi8(0x20);
        let mut passed = [[0u8; LANES]; SETS];
        let mut offset = 0;
        while offset < text.len() {
            let mut pass = [_mm512_set1_epi8(-1); SETS];
            for j in 0..WIDTH {
                let bytes = load_part(text, offset + j);
                let index = _mm512_or_si512(bytes, case);
                for set in 0..SETS {
                    let admits = _mm512_permutex2var_epi8(low[set][j], index, high[set][j]);
                    pass[set] = _mm512_and_si512(pass[set], admits);
                }
            }
            let mut places = 0u64;
            for set in pass {
                places |= _mm512_test_epi8_mask(set, set);
            }
            let left = text.len() - offset;
            if left < LANES {
                places &= (1u64 << left) - 1;
            }
            if places != 0 {
                for (set, vector) in pass.into_iter().enumerate() {
                    // SAFETY: 64 bytes into a 64-byte array.
                    unsafe { _mm512_storeu_si512(passed[set].as_mut_ptr().cast(), vector) };
                }
                while places != 0 {
                    let lane = places.trailing_zeros() as usize;
                    self.compare(
                        text,
                        offset + lane,
                        std::array::from_fn(|set| passed[set][lane]),
                        &mut found,
                    );
                    places &= places - 1;
                }
            }
            offset += LANES;
        }
    }

    /// Compares the anchors of the buckets `passed` names with `text` at `start`: first their first bytes as the
    /// tables see them, all at once, then the whole anchor.
    fn compare(&self, text: &[u8], start: usize, passed: [u8; SETS], found: &mut impl FnMut(usize, usize, usize)) {
        let (word, _) = prefix(&text[start..]);
        for (set, mut bits) in passed.into_iter().enumerate() {
            while bits != 0 {
                let bucket = set * 8 + bits.trailing_zeros() as usize;
                for &needle in &self.buckets[bucket] {
                    let (first, mask) = self.prefixes[needle];
                    let bytes = &self.needles[needle];
                    if word & mask == first
                        && (text.get(start..start + bytes.len())).is_some_and(|part| part.eq_ignore_ascii_case(bytes))
                    {
                        found(needle, start, start + bytes.len());
                    }
                }
                bits &= bits - 1;
            }
        }
    }
}

/// The first WIDTH bytes of `bytes` as the tables see them (`folded`), little-endian, and a mask of those present.
fn prefix(bytes: &[u8]) -> (u32, u32) {
    let (mut word, mut mask) = (0u32, 0u32);
    for (position, &byte) in bytes.iter().take(WIDTH).enumerate() {
        word |= (folded(byte) as u32) << (8 * position);
        mask |= 0xff << (8 * position);
    }
    (word, mask)
}

/// The 64 bytes of `text` from `start`, zeros past its end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn load_part(text: &[u8], start: usize) -> __m512i {
    if start + LANES <= text.len() {
        // SAFETY: 64 bytes within `text`.
        return unsafe { _mm512_loadu_si512(text.as_ptr().add(start).cast()) };
    }
    let left = text.len().saturating_sub(start);
    let mask = if left >= LANES { u64::MAX } else { (1u64 << left) - 1 };
    // SAFETY: only the bytes the mask selects are read, all within `text`; masked-off lanes are not accessed.
    unsafe { _mm512_maskz_loadu_epi8(mask, text.as_ptr().wrapping_add(start).cast()) }
}

/// How often a folded byte occurs in text, roughly (letters as in English prose and code, then spaces): the
/// buckets are chosen so that a random place passes few of them.
fn frequency(entry: usize) -> f64 {
    const LETTERS: &[u8; 26] = b"etaoinshrdlcumwfgypbvkjxqz";
    let byte = entry as u8;
    if byte.is_ascii_lowercase() {
        let rank = LETTERS.iter().position(|&letter| letter == byte).expect("a letter") as f64;
        return 0.09 * 0.87f64.powf(rank);
    }
    match byte {
        b' ' => 0.15,
        b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' | b'"' | b':' | b'=' | b'(' | b')' | b',' => 0.01,
        _ => 0.002,
    }
}

/// The share of random places a bucket whose tables admit `admitted` passes.
fn weight(admitted: &[u128; WIDTH], frequencies: &[f64; 128]) -> f64 {
    (admitted.iter())
        .map(|&entries| {
            let (mut bits, mut sum) = (entries, 0.0);
            while bits != 0 {
                sum += frequencies[bits.trailing_zeros() as usize];
                bits &= bits - 1;
            }
            sum
        })
        .product()
}

/// The needles in BUCKETS groups: greedily, the two groups whose union passes the fewest more places are merged
/// until BUCKETS are left (deterministic: ties go to the first pair).
fn group(needles: &[Vec<u8>]) -> Vec<Vec<usize>> {
    let admitted = |needle: &[u8]| -> [u128; WIDTH] {
        std::array::from_fn(|position| needle.get(position).map_or(u128::MAX, |&byte| 1u128 << folded(byte)))
    };
    let frequencies: [f64; 128] = std::array::from_fn(frequency);
    let weight = |tables: &[u128; WIDTH]| weight(tables, &frequencies);
    let union = |a: &[u128; WIDTH], b: &[u128; WIDTH]| -> [u128; WIDTH] { std::array::from_fn(|j| a[j] | b[j]) };
    let mut groups: Vec<(Vec<usize>, [u128; WIDTH], f64)> = (needles.iter().enumerate())
        .map(|(index, needle)| {
            let tables = admitted(needle);
            (vec![index], tables, weight(&tables))
        })
        .collect();
    let cost = |a: &(Vec<usize>, [u128; WIDTH], f64), b: &(Vec<usize>, [u128; WIDTH], f64)| {
        weight(&union(&a.1, &b.1)) - a.2 - b.2
    };
    let mut costs: Vec<Vec<f64>> = (0..groups.len())
        .map(|a| {
            (0..groups.len())
                .map(|b| {
                    if b > a {
                        cost(&groups[a], &groups[b])
                    } else {
                        f64::INFINITY
                    }
                })
                .collect()
        })
        .collect();
    while groups.len() > BUCKETS {
        let (mut best, mut pair) = (f64::INFINITY, (0, 1));
        for (a, row) in costs.iter().enumerate() {
            for (b, &value) in row.iter().enumerate().skip(a + 1) {
                if value < best {
                    (best, pair) = (value, (a, b));
                }
            }
        }
        let (a, b) = pair;
        let merged = groups.remove(b);
        costs.remove(b);
        costs.iter_mut().for_each(|row| {
            row.remove(b);
        });
        groups[a].0.extend(merged.0);
        groups[a].1 = union(&groups[a].1, &merged.1);
        groups[a].2 = weight(&groups[a].1);
        for other in 0..groups.len() {
            let value = if other == a {
                f64::INFINITY
            } else {
                cost(&groups[a.min(other)], &groups[a.max(other)])
            };
            costs[a.min(other)][a.max(other)] = value;
        }
    }
    groups.into_iter().map(|(members, _, _)| members).collect()
}
