//! Buffers kept for reuse, under a count and a byte room: evicted bias buffers for the next
//! generations (a new buffer costs an allocation and wgpu's zero-fill, which on lavapipe
//! doubles a generation), and readback's staging buffers.
//!
//! Only a buffer nobody else holds is kept: a view the caller still has (an `Arc` clone) is
//! never written under it. Generic over the buffer type so its rules are tested without a
//! GPU.

use std::sync::Arc;

/// Anything with a size in bytes: a `wgpu::Buffer` (`gpu/device/context.rs`), or a number in the
/// tests.
pub(crate) trait ByteSize {
    fn bytes(&self) -> u64;
}

pub(crate) struct BufferPool<B> {
    /// Newest first.
    kept: Vec<B>,
    max_kept: usize,
    /// A request of fewer bytes may still take a buffer of up to this size.
    small_request_bytes: u64,
}

impl<B: ByteSize> BufferPool<B> {
    /// A pool of at most `max_kept` buffers; a request takes a buffer of at most twice its
    /// size, or of at most `small_request_bytes` (so small requests share one buffer).
    pub fn new(max_kept: usize, small_request_bytes: u64) -> Self {
        Self {
            kept: Vec::new(),
            max_kept,
            small_request_bytes,
        }
    }

    /// Bytes of the buffers kept.
    pub fn bytes(&self) -> u64 {
        self.kept.iter().map(ByteSize::bytes).sum()
    }

    /// A kept buffer of at least `bytes` and at most twice that (so that a small request
    /// does not hold a large buffer) or the pool's small-request size, the smallest such,
    /// removed from the pool.
    pub fn take(&mut self, bytes: u64) -> Option<B> {
        let largest = bytes.saturating_mul(2).max(self.small_request_bytes);
        let index = self
            .kept
            .iter()
            .enumerate()
            .filter(|(_, b)| b.bytes() >= bytes && b.bytes() <= largest)
            .min_by_key(|(_, b)| b.bytes())
            .map(|(index, _)| index)?;
        Some(self.kept.remove(index))
    }

    /// Keeps the `evicted` buffers that nobody else holds, newest first, at most the pool's
    /// count, then [`trim`](Self::trim)s to `room` bytes.
    pub fn keep(&mut self, evicted: Vec<Arc<B>>, room: u64) {
        for buffer in evicted {
            if let Ok(buffer) = Arc::try_unwrap(buffer) {
                self.kept.insert(0, buffer);
            }
        }
        self.kept.truncate(self.max_kept);
        self.trim(room);
    }

    /// Drops buffers, oldest first among those that do not fit, until the pool holds at
    /// most `room` bytes.
    pub fn trim(&mut self, room: u64) {
        let mut held = 0u64;
        self.kept.retain(|buffer| {
            let fits = held + buffer.bytes() <= room;
            if fits {
                held += buffer.bytes();
            }
            fits
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ByteSize for u64 {
        fn bytes(&self) -> u64 {
            *self
        }
    }

    fn pool(sizes: &[u64]) -> BufferPool<u64> {
        let mut pool = BufferPool::new(4, 0);
        pool.keep(sizes.iter().rev().map(|&s| Arc::new(s)).collect(), u64::MAX);
        pool
    }

    #[test]
    fn takes_the_smallest_buffer_within_twice_the_request() {
        let mut p = pool(&[100, 64, 300, 128]);
        assert_eq!(p.take(64), Some(64));
        assert_eq!(p.take(64), Some(100));
        assert_eq!(p.take(64), Some(128), "exactly twice the request is taken");
        assert_eq!(p.take(64), None, "300 is more than twice the request");
        assert_eq!(p.take(301), None, "300 is too small");
        assert_eq!(p.take(149), None);
        assert_eq!(p.take(150), Some(300), "exactly twice");
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn small_requests_share_a_buffer_of_the_small_request_size() {
        let mut p = BufferPool::new(2, 64);
        p.keep(vec![Arc::new(64u64)], u64::MAX);
        assert_eq!(p.take(1), Some(64), "64 <= max(2, 64)");
        p.keep(vec![Arc::new(65u64)], u64::MAX);
        assert_eq!(p.take(1), None, "65 > max(2, 64)");
        assert_eq!(p.take(33), Some(65), "65 <= 66");
        p.keep((1..=3).map(Arc::new).collect(), u64::MAX);
        assert_eq!(p.bytes(), 5, "the newest two: 3 and 2");
    }

    #[test]
    fn never_keeps_a_buffer_someone_holds() {
        let mut p = BufferPool::new(4, 0);
        let held = Arc::new(64u64);
        let _caller = held.clone();
        p.keep(vec![held, Arc::new(32)], u64::MAX);
        assert_eq!(p.bytes(), 32);
        assert_eq!(p.take(64), None);
    }

    #[test]
    fn keeps_the_newest_within_count_and_room() {
        let mut p = BufferPool::new(4, 0);
        p.keep((1..=6).map(Arc::new).collect(), u64::MAX);
        // Newest first: 6, 5, 4, 3 kept.
        assert_eq!(p.bytes(), 18);
        p.trim(11);
        assert_eq!(
            p.bytes(),
            11,
            "6 + 5 fit exactly; 4 and 3 do not after them"
        );
        p.trim(10);
        assert_eq!(p.bytes(), 6, "5 no longer fits after 6");
        p.trim(5);
        assert_eq!(p.bytes(), 0);
        let mut p = pool(&[8, 2, 4]);
        p.trim(6);
        assert_eq!(p.bytes(), 6, "8 is dropped, the smaller ones after it stay");
    }
}
