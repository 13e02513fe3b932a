//! Strong passwords for new extensions.

use rand::Rng;

/// Letters and digits without the ones people misread (0/O, 1/l/I).
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// 20 characters from a 57-letter alphabet: about 116 bits, typed without ambiguity.
pub fn generate() -> String {
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_random_and_unambiguous() {
        let a = super::generate();
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|b| super::ALPHABET.contains(&b)));
        assert_ne!(a, super::generate());
    }
}
