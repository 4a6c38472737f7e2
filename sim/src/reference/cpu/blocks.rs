//! Running a kernel's blocks on several threads at once: each block (a few output rows of every
//! channel, say) is whole on one thread, so the threads synchronize once per kernel instead of
//! once per step of every block.

use std::marker::PhantomData;
use std::ops::Range;

/// Whether a kernel of `blocks` independent blocks should give each thread whole blocks (true)
/// or run them one after another with each step split among the threads: whole blocks when there
/// are enough of them to keep every thread busy.
pub(crate) fn whole_blocks(blocks: usize) -> bool {
    let threads = rayon::current_num_threads();
    threads > 1 && blocks >= threads
}

/// The output of a kernel whose blocks run on several threads at once, each writing its own
/// elements (rows of every channel plane, interleaved with the other blocks' rows).
pub(crate) struct SharedOut<'a> {
    ptr: *mut f32,
    len: usize,
    out: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `SharedOut` only hands out elements through `part`, `fill` and `rows`, whose callers
// promise that no two threads touch the same element.
unsafe impl Send for SharedOut<'_> {}
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    /// A fresh output of `len` elements in `out` (emptied; its old elements are dropped), none
    /// written yet: each block writes its own, once (no pass that zeroes or fills the whole
    /// output first, on one thread). Once every element is written, the caller sets `out`'s
    /// length to `len`.
    pub fn fresh(out: &'a mut Vec<f32>, len: usize) -> SharedOut<'a> {
        out.clear();
        out.reserve_exact(len);
        SharedOut {
            ptr: out.spare_capacity_mut().as_mut_ptr().cast(),
            len,
            out: PhantomData,
        }
    }

    /// Shares `out`, whose elements are all written already (a product that adds onto them may
    /// read them).
    pub fn over(out: &'a mut [f32]) -> SharedOut<'a> {
        SharedOut {
            ptr: out.as_mut_ptr(),
            len: out.len(),
            out: PhantomData,
        }
    }

    /// Elements `range` of the output.
    ///
    /// # Safety
    /// Every element of `range` has been written, and no other live part (on this thread or
    /// another) overlaps `range`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, range: Range<usize>) -> &'a mut [f32] {
        self.check(&range);
        // SAFETY: inside the output (checked), written and not aliased (the caller's promise)
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }

    /// Writes `value` to elements `range` of the output and hands them out.
    ///
    /// # Safety
    /// No other live part (on this thread or another) overlaps `range`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn fill(&self, range: Range<usize>, value: f32) -> &'a mut [f32] {
        self.check(&range);
        for i in range.clone() {
            // SAFETY: inside the output (checked) and not aliased (the caller's promise)
            unsafe { self.ptr.add(i).write(value) };
        }
        // SAFETY: just written
        unsafe { self.part(range) }
    }

    fn check(&self, range: &Range<usize>) {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "a block's part lies inside the output"
        );
    }

    /// A pointer to `rows` rows of `cols` elements, `stride` apart, from element `first`, checked
    /// to lie inside the output: for a kernel that writes them through the pointer.
    pub fn rows(&self, first: usize, rows: usize, cols: usize, stride: usize) -> *mut f32 {
        let end = match rows {
            0 => Some(first),
            _ => (rows - 1)
                .checked_mul(stride)
                .and_then(|v| v.checked_add(first))
                .and_then(|v| v.checked_add(cols)),
        };
        assert!(
            end.is_some_and(|end| end <= self.len),
            "a block's rows lie inside the output"
        );
        // SAFETY: `first ≤ end ≤ len` (asserted)
        unsafe { self.ptr.add(first) }
    }
}
