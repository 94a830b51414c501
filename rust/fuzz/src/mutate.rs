//! Byte-level mutations of an input, the classic ones of coverage-guided fuzzers, plus
//! tokens from a target's dictionary so that mutations often stay close to the format.

use crate::rng::Rng;

/// Bytes that change the meaning of JSON, SSE, headers and JSONL lines.
const INTERESTING_BYTES: &[u8] =
    b"\0\t\n\r \"',:;=[]{}\\/-+.0123456789eE\x7f\x80\xbf\xc3\xe2\xed\xef\xf0\xff";

/// Applies between one and eight mutations; `others` feeds splicing.
pub fn mutate(input: &mut Vec<u8>, rng: &mut Rng, dictionary: &[&[u8]], others: &[Vec<u8>]) {
    for _ in 0..rng.between(1, 8) {
        mutate_once(input, rng, dictionary, others);
    }
}

fn mutate_once(input: &mut Vec<u8>, rng: &mut Rng, dictionary: &[&[u8]], others: &[Vec<u8>]) {
    match rng.below(11) {
        0 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] = rng.pick(INTERESTING_BYTES);
        }
        2 => {
            let at = rng.below(input.len() + 1);
            let bytes: Vec<u8> = (0..rng.between(1, 8))
                .map(|_| rng.pick(INTERESTING_BYTES))
                .collect();
            input.splice(at..at, bytes);
        }
        3 if !input.is_empty() => {
            let (start, end) = range(input.len(), rng);
            input.drain(start..end);
        }
        4 if !input.is_empty() => {
            let (start, end) = range(input.len(), rng);
            let copy = input[start..end].to_vec();
            let at = rng.below(input.len() + 1);
            input.splice(at..at, copy);
        }
        5 | 6 if !dictionary.is_empty() => {
            let token = rng.pick(dictionary);
            let at = rng.below(input.len() + 1);
            input.splice(at..at, token.iter().copied());
        }
        7 if !dictionary.is_empty() && !input.is_empty() => {
            let token = rng.pick(dictionary);
            let (start, end) = range(input.len(), rng);
            input.splice(start..end, token.iter().copied());
        }
        8 if !others.is_empty() => {
            let other = &others[rng.below(others.len())];
            let keep = rng.below(input.len() + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(keep);
            input.extend_from_slice(&other[from..]);
        }
        9 if !input.is_empty() => {
            input.truncate(rng.below(input.len()));
        }
        10 if input.len() > 1 => {
            let (a, b) = (rng.below(input.len()), rng.below(input.len()));
            input.swap(a, b);
        }
        _ => input.push(rng.next_u64() as u8),
    }
}

/// A non-empty range inside `0..len`, short more often than long.
fn range(len: usize, rng: &mut Rng) -> (usize, usize) {
    let start = rng.below(len);
    let end = start + 1 + rng.small(len - start - 1);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_stay_deterministic() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut input = b"{\"model\":\"m\"}".to_vec();
            mutate(&mut input, &mut rng, &[b"null"], &[b"[1]".to_vec()]);
            input
        };
        assert_eq!(run(3), run(3));
        let changed = (0..50)
            .filter(|&seed| run(seed) != b"{\"model\":\"m\"}")
            .count();
        assert!(changed > 40, "{changed}");
    }
}
