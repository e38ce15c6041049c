//! A run's own key: 32 random bytes in `runs/<run id>/secret-key` (mode 0600, in the run's
//! 0700 folder), made with the folder. A step derives from it what it must
//! make again, identical, when the run is resumed — a generated password — so the journal
//! never holds the value: HMAC-SHA256 under the key over what the value is for (the step, the
//! element, the parameters), expanded block by block (HMAC as a PRF, as HMAC_DRBG and HKDF use
//! it). The key never leaves the file: not in events, plan files, outputs or `flow serve`.
//! It must travel with the run's folder: a resume elsewhere without it cannot make the same
//! values again, and says so.

use crate::saved_plan::hmac_sha256;
use std::path::Path;

/// The key's file name in the run's folder.
pub const RUN_KEY_FILE: &str = "secret-key";

pub struct RunKey {
    key: Vec<u8>,
}

impl RunKey {
    /// The run's key, made when `create` and there is none yet.
    pub fn load(run_dir: &Path, create: bool) -> Result<RunKey, String> {
        let path = run_dir.join(RUN_KEY_FILE);
        let shown = path.display();
        let found = crate::key_file::read(&path)
            .map_err(|e| format!("cannot read the run's key {shown}: {e}"))?;
        let key = match found {
            Some(key) => key,
            None if create => crate::key_file::create(&path)
                .map_err(|e| format!("cannot make the run's key {shown}: {e}"))?,
            None => {
                return Err(format!(
                    "the run's key {shown} is missing: it was made when the run started, and a resume needs it to derive the values it derived before (copy the run's folder whole)"
                ));
            }
        };
        Ok(RunKey { key })
    }

    /// An endless stream of bytes for `purpose`, the same for the same key and purpose.
    pub fn stream(&self, purpose: &str) -> DerivedBytes {
        DerivedBytes {
            key: self.key.clone(),
            purpose: purpose.as_bytes().to_vec(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

/// Bytes derived from a run's key: block `n` is HMAC-SHA256(key, purpose ‖ 0 ‖ n as 8 bytes).
pub struct DerivedBytes {
    key: Vec<u8>,
    purpose: Vec<u8>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl DerivedBytes {
    /// A number below `bound` (> 0), every one equally likely: 4 bytes at a time, the draws
    /// past the largest multiple of `bound` thrown away.
    pub fn below(&mut self, bound: u32) -> u32 {
        let bound = bound.max(1);
        let limit = u32::MAX - (u32::MAX % bound);
        loop {
            let draw = u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()]);
            if draw < limit {
                return draw % bound;
            }
        }
    }

    fn byte(&mut self) -> u8 {
        if self.used == self.block.len() {
            let mut message = self.purpose.clone();
            message.push(0);
            message.extend_from_slice(&self.counter.to_be_bytes());
            self.block = hmac_sha256(&self.key, &message);
            self.counter += 1;
            self.used = 0;
        }
        self.used += 1;
        self.block[self.used - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_and_purpose_give_the_same_bytes_and_others_differ() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = RunKey::load(dir.path(), true).expect("key");
        let again = RunKey::load(dir.path(), false).expect("key again");
        let draw = |key: &RunKey, purpose: &str| -> Vec<u32> {
            let mut bytes = key.stream(purpose);
            (0..100).map(|_| bytes.below(62)).collect()
        };
        assert_eq!(draw(&key, "a"), draw(&again, "a"));
        assert_ne!(draw(&key, "a"), draw(&key, "b"));
        assert!(draw(&key, "a").iter().all(|n| *n < 62));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(RUN_KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = tempfile::tempdir().expect("temp dir");
        let error = RunKey::load(other.path(), false).err().expect("no key");
        assert!(error.contains("missing"), "{error}");
    }

    #[test]
    fn draws_below_a_bound_are_spread_evenly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = RunKey::load(dir.path(), true).expect("key");
        let mut bytes = key.stream("spread");
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[bytes.below(10) as usize] += 1;
        }
        // Each of 10 values about 10 000 times: far outside 9 000..11 000 is a bias.
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
    }
}
