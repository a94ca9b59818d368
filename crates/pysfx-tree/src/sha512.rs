//! SHA-384 and SHA-512, small: the two hashes PEP 427 allows RECORD besides SHA-256 ("sha256
//! or better"). Wheels almost never use them, so the stub carries this plain loop rather than
//! the `sha2` crate's unrolled code for them (22 KB); it is checked against `sha2` in the
//! tests below. SHA-256, which every install hashes, stays `sha2`'s.

/// The round constants: the first 64 bits of the fractional parts of the cube roots of the
/// first 80 primes (FIPS 180-4, 4.2.3).
const K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// SHA-512's initial state (FIPS 180-4, 5.3.5).
const SHA512: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// SHA-384's initial state (FIPS 180-4, 5.3.4).
const SHA384: [u64; 8] = [
    0xcbbb9d5dc1059ed8,
    0x629a292a367cd507,
    0x9159015a3070dd17,
    0x152fecd8f70e5939,
    0x67332667ffc00b31,
    0x8eb44a8768581511,
    0xdb0c2e0d64f98fa7,
    0x47b5481dbefa4fa4,
];

/// A SHA-384 or SHA-512 hasher.
#[derive(Clone)]
pub struct Sha512Family {
    state: [u64; 8],
    block: [u8; 128],
    filled: usize,
    /// Bytes hashed so far.
    length: u128,
    /// Bytes of the digest: 48 for SHA-384, 64 for SHA-512.
    digest_len: usize,
}

impl Sha512Family {
    pub fn sha384() -> Self {
        Self::with(SHA384, 48)
    }

    pub fn sha512() -> Self {
        Self::with(SHA512, 64)
    }

    fn with(state: [u64; 8], digest_len: usize) -> Self {
        Sha512Family {
            state,
            block: [0; 128],
            filled: 0,
            length: 0,
            digest_len,
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.length = self.length.wrapping_add(bytes.len() as u128);
        while !bytes.is_empty() {
            let take = (128 - self.filled).min(bytes.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == 128 {
                compress(&mut self.state, &self.block);
                self.filled = 0;
            }
        }
    }

    pub fn finalize(mut self) -> Vec<u8> {
        let bits = self.length.wrapping_mul(8);
        let mut tail = [0u8; 256];
        tail[0] = 0x80;
        // The 0x80 byte, zeros, then the length in 16 bytes: one block or two.
        let padding = if self.filled < 112 { 128 } else { 256 } - self.filled;
        tail[padding - 16..padding].copy_from_slice(&bits.to_be_bytes());
        self.update_tail(&tail[..padding]);
        let mut digest: Vec<u8> = self
            .state
            .iter()
            .flat_map(|word| word.to_be_bytes())
            .collect();
        digest.truncate(self.digest_len);
        digest
    }

    /// `update` without counting the bytes: the padding.
    fn update_tail(&mut self, bytes: &[u8]) {
        let length = self.length;
        self.update(bytes);
        self.length = length;
    }
}

fn compress(state: &mut [u64; 8], block: &[u8; 128]) {
    let mut w = [0u64; 80];
    for (word, chunk) in w.iter_mut().zip(block.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_be_bytes(bytes);
    }
    for i in 16..80 {
        let s0 = w[i - 15].rotate_right(1) ^ w[i - 15].rotate_right(8) ^ (w[i - 15] >> 7);
        let s1 = w[i - 2].rotate_right(19) ^ w[i - 2].rotate_right(61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let mut v = *state;
    for i in 0..80 {
        let [a, b, c, d, e, f, g, h] = v;
        let s1 = e.rotate_right(14) ^ e.rotate_right(18) ^ e.rotate_right(41);
        let choice = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(choice)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(28) ^ a.rotate_right(34) ^ a.rotate_right(39);
        let majority = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(majority);
        v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
    }
    for (word, add) in state.iter_mut().zip(v) {
        *word = word.wrapping_add(add);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// Every length around the block and padding boundaries, and data fed in odd pieces, give
    /// what `sha2` gives.
    #[test]
    fn digests_match_sha2() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for length in (0..300).chain([511, 512, 999, 1000]) {
            let bytes = &data[..length];
            let mut ours = (Sha512Family::sha512(), Sha512Family::sha384());
            for piece in bytes.chunks(37) {
                ours.0.update(piece);
                ours.1.update(piece);
            }
            assert_eq!(
                ours.0.finalize(),
                sha2::Sha512::digest(bytes).to_vec(),
                "{length}"
            );
            assert_eq!(
                ours.1.finalize(),
                sha2::Sha384::digest(bytes).to_vec(),
                "{length}"
            );
        }
    }

    /// FIPS 180-4's example: "abc".
    #[test]
    fn the_standards_example() {
        let mut hasher = Sha512Family::sha384();
        hasher.update(b"abc");
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
    }
}
