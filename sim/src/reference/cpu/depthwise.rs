//! Depthwise convolution eight channels at a time. The eight input planes are laid out
//! interleaved (each pixel's eight channels side by side, zero-padded around), so one 256-bit
//! vector is one pixel of eight channels: every tap is a vector multiply and add whatever the
//! plane's width or stride, and eight output pixels in a row of the flattened plane are eight
//! independent sums, transposed back to the eight output planes as they are stored. onnxruntime
//! keeps a whole network in such a blocked layout (its NCHWc kernels); here only the depthwise
//! layer pays for the two transposes, which are moves.
//!
//! Every output sums its taps in kernel order from zero, a multiply then an add each (never
//! fused), then adds the bias: the arithmetic of `DepthwisePlane`, so both give the same bits on
//! every CPU.

use etch_ir::op::WindowAxis;

/// Channels a block computes at once: the lanes of a 256-bit vector of f32.
pub(crate) const CHANNELS: usize = 8;

/// One plane's geometry for blocks of [`CHANNELS`] channels, shared by every block.
pub(crate) struct Depthwise8 {
    h: usize,
    wd: usize,
    ho: usize,
    wo: usize,
    sh: usize,
    sw: usize,
    /// The padded plane: rows and columns from the first the window reads to the last.
    hp: usize,
    wp: usize,
    pad_top: i64,
    pad_left: i64,
    /// Per tap, in kernel order: its offset in the padded plane, in pixels.
    taps: Vec<usize>,
}

impl Depthwise8 {
    /// The geometry of an `h×wd` input plane slid over by `[ah, aw]`; `None` where the padded
    /// plane would be larger than twice the input plane or one channel's im2col matrix (a hostile
    /// stride, dilation or pad): the kernel then is not worth its layout.
    pub(crate) fn new((h, wd): (usize, usize), [ah, aw]: [WindowAxis; 2]) -> Option<Depthwise8> {
        let [kh, kw, ho, wo] = [ah.kernel, aw.kernel, ah.out, aw.out].map(|v| v as usize);
        let [sh, sw, dh, dw] = [ah.stride, aw.stride, ah.dilation, aw.dilation].map(|v| v as usize);
        let reach = |out: usize, s: usize, k: usize, d: usize| {
            out.checked_sub(1)?
                .checked_mul(s)?
                .checked_add(k.checked_sub(1)?.checked_mul(d)?)?
                .checked_add(1)
        };
        let (hp, wp) = (reach(ho, sh, kh, dh)?, reach(wo, sw, kw, dw)?);
        let budget = (h.saturating_mul(wd))
            .max(kh.saturating_mul(kw).saturating_mul(ho).saturating_mul(wo))
            .saturating_mul(2)
            .saturating_add(4096);
        if hp.checked_mul(wp)? > budget {
            return None;
        }
        let taps = (0..kh)
            .flat_map(|ki| (0..kw).map(move |kj| ki * dh * wp + kj * dw))
            .collect();
        Some(Depthwise8 {
            h,
            wd,
            ho,
            wo,
            sh,
            sw,
            hp,
            wp,
            pad_top: ah.pad_begin,
            pad_left: aw.pad_begin,
            taps,
        })
    }

    /// Whether the layer runs faster here than one channel at a time (`DepthwisePlane`, whose
    /// rows of eight pixels need no transposes): a strided or narrow plane. Measured with the
    /// `bench_cpu` example on single-layer models (best of five): ten 3×3 stride-1 layers of 32
    /// channels at 112² took 2.40 ms here against 2.29 ms there, one stride-2 layer of 96
    /// channels at 112² 0.29 against 0.63 ms, ten stride-1 layers of 960 channels at 7² 0.73
    /// against 1.17 ms.
    pub(crate) fn pays(&self) -> bool {
        self.sw > 1 || self.wo < 32
    }

    /// The length of the scratch [`Depthwise8::run`] takes.
    pub(crate) fn scratch_len(&self) -> usize {
        self.hp * self.wp * CHANNELS
    }

    /// Writes eight channels' outputs: `dst[c]` (`ho·wo` elements, which may be uninitialized)
    /// becomes `bias[c]` plus input plane `src[c]` convolved with `filt[c]` (`kh·kw` weights);
    /// `padded` is scratch ([`Depthwise8::scratch_len`] long).
    ///
    /// # Safety
    /// Each `dst[c]` points at `ho·wo` elements that nothing else reads or writes during the call.
    pub(crate) unsafe fn run(
        &self,
        src: [&[f32]; CHANNELS],
        filt: [&[f32]; CHANNELS],
        bias: [f32; CHANNELS],
        dst: [*mut f32; CHANNELS],
        padded: &mut [f32],
    ) {
        assert!(src.iter().all(|s| s.len() >= self.h * self.wd));
        assert!(filt.iter().all(|f| f.len() >= self.taps.len()));
        assert!(padded.len() >= self.scratch_len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, which `run_avx2` enables; `dst` as the caller promises
            unsafe { self.run_avx2(src, filt, bias, dst, padded) };
            return;
        }
        // SAFETY: as the caller promises
        unsafe { self.run_lanes::<Plain>(src, filt, bias, dst, padded) };
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(
        &self,
        src: [&[f32]; CHANNELS],
        filt: [&[f32]; CHANNELS],
        bias: [f32; CHANNELS],
        dst: [*mut f32; CHANNELS],
        padded: &mut [f32],
    ) {
        // SAFETY: AVX2 is enabled here, the only feature `Avx2`'s operations need
        unsafe { self.run_lanes::<avx2::Avx2>(src, filt, bias, dst, padded) };
    }

    /// The kernel on vectors `V` (the portable and the AVX2 ones compute the same bits).
    #[inline(always)]
    unsafe fn run_lanes<V: Lanes>(
        &self,
        src: [&[f32]; CHANNELS],
        filt: [&[f32]; CHANNELS],
        bias: [f32; CHANNELS],
        dst: [*mut f32; CHANNELS],
        padded: &mut [f32],
    ) {
        self.pad::<V>(src, padded);
        let weights: Vec<V> = (0..self.taps.len())
            .map(|t| V::from_array(std::array::from_fn(|c| filt[c][t])))
            .collect();
        let pixels = self.ho * self.wo;
        // the last pixel a window reads is the padded plane's last: ((ho − 1)·sh + (kh − 1)·dh,
        // (wo − 1)·sw + (kw − 1)·dw) = (hp − 1, wp − 1)
        let p = padded[..self.scratch_len()].as_ptr();
        // SAFETY: `base` is a window's first padded pixel and `tap` inside the window, so every
        // pixel read lies inside the padded plane (above)
        let load = |base: usize, tap: usize| unsafe { V::load_ptr(p.add((base + tap) * CHANNELS)) };
        // the padded pixel each output pixel's window starts at, walking the flattened plane
        let (mut oi, mut oj) = (0, 0);
        let mut next_base = || {
            let base = oi * self.sh * self.wp + oj * self.sw;
            oj += 1;
            if oj == self.wo {
                (oi, oj) = (oi + 1, 0);
            }
            base
        };
        let mut q = 0;
        while q + CHANNELS <= pixels {
            let bases: [usize; CHANNELS] = std::array::from_fn(|_| next_base());
            let mut acc = [V::zero(); CHANNELS];
            for (&tap, &w) in self.taps.iter().zip(&weights) {
                for (acc, &base) in acc.iter_mut().zip(&bases) {
                    *acc = acc.add(load(base, tap).mul(w));
                }
            }
            // lane c of acc[t] is channel c of pixel q + t: transposed, row c is channel c's
            // eight pixels
            for (c, sums) in V::transpose(acc).into_iter().enumerate() {
                let out = sums.add(V::splat(bias[c]));
                // SAFETY: pixels q..q + 8 of channel c's plane (the caller's promise)
                unsafe { out.store(dst[c].add(q)) };
            }
            q += CHANNELS;
        }
        for q in q..pixels {
            let base = next_base();
            let mut acc = V::zero();
            for (&tap, &w) in self.taps.iter().zip(&weights) {
                acc = acc.add(load(base, tap).mul(w));
            }
            for (c, sum) in acc.to_array().into_iter().enumerate() {
                // SAFETY: pixel q of channel c's plane (the caller's promise)
                unsafe { dst[c].add(q).write(bias[c] + sum) };
            }
        }
    }

    /// Lays the eight input planes out interleaved in `padded`, zeros around them.
    #[inline(always)]
    fn pad<V: Lanes>(&self, src: [&[f32]; CHANNELS], padded: &mut [f32]) {
        let (wp, wd) = (self.wp, self.wd);
        // the input columns inside the padded plane, and where the first lands
        let j0 = (-self.pad_left).max(0) as usize;
        let c0 = (self.pad_left.max(0) as usize).min(wp);
        let cols = wd.saturating_sub(j0).min(wp - c0);
        for (pr, row) in padded[..self.scratch_len()]
            .chunks_exact_mut(wp * CHANNELS)
            .enumerate()
        {
            let r = pr as i64 - self.pad_top;
            if r < 0 || r >= self.h as i64 || cols == 0 {
                row.fill(0.0);
                continue;
            }
            let (left, rest) = row.split_at_mut(c0 * CHANNELS);
            let (body, right) = rest.split_at_mut(cols * CHANNELS);
            left.fill(0.0);
            right.fill(0.0);
            let first = r as usize * wd + j0;
            let lines: [&[f32]; CHANNELS] = std::array::from_fn(|c| &src[c][first..first + cols]);
            let mut blocks = body.chunks_exact_mut(CHANNELS * CHANNELS);
            for (b, block) in blocks.by_ref().enumerate() {
                let at = b * CHANNELS;
                let rows = std::array::from_fn(|c| V::load(&lines[c][at..at + CHANNELS]));
                for (pixel, v) in block.chunks_exact_mut(CHANNELS).zip(V::transpose(rows)) {
                    v.store_slice(pixel);
                }
            }
            // the last columns: eight loaded and transposed where every plane has them (the
            // next row's first), else one by one
            let done = cols / CHANNELS * CHANNELS;
            let rest = blocks.into_remainder();
            let at = first + done;
            if !rest.is_empty() && src.iter().all(|s| s.len() >= at + CHANNELS) {
                let rows = std::array::from_fn(|c| V::load(&src[c][at..at + CHANNELS]));
                for (pixel, v) in rest.chunks_exact_mut(CHANNELS).zip(V::transpose(rows)) {
                    v.store_slice(pixel);
                }
            } else {
                for (j, pixel) in rest.chunks_exact_mut(CHANNELS).enumerate() {
                    for (c, v) in pixel.iter_mut().enumerate() {
                        *v = lines[c][done + j];
                    }
                }
            }
        }
    }
}

/// A vector of [`CHANNELS`] f32 lanes: the kernel's arithmetic, lane by lane.
trait Lanes: Copy {
    fn zero() -> Self;
    fn splat(v: f32) -> Self;
    fn from_array(a: [f32; CHANNELS]) -> Self;
    fn to_array(self) -> [f32; CHANNELS];
    /// The first [`CHANNELS`] elements of `s`.
    fn load(s: &[f32]) -> Self;
    /// The [`CHANNELS`] elements at `p`.
    ///
    /// # Safety
    /// `p` points at [`CHANNELS`] readable elements.
    unsafe fn load_ptr(p: *const f32) -> Self;
    fn store_slice(self, s: &mut [f32]);
    /// Stores the lanes at `p`.
    ///
    /// # Safety
    /// `p` points at [`CHANNELS`] writable elements.
    unsafe fn store(self, p: *mut f32);
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// Lane `j` of row `i` becomes lane `i` of row `j`.
    fn transpose(rows: [Self; CHANNELS]) -> [Self; CHANNELS];
}

/// The portable vector: an array the compiler vectorizes where it can.
#[derive(Clone, Copy)]
struct Plain([f32; CHANNELS]);

impl Lanes for Plain {
    #[inline(always)]
    fn zero() -> Self {
        Plain([0.0; CHANNELS])
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Plain([v; CHANNELS])
    }
    #[inline(always)]
    fn from_array(a: [f32; CHANNELS]) -> Self {
        Plain(a)
    }
    #[inline(always)]
    fn to_array(self) -> [f32; CHANNELS] {
        self.0
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        Plain(s[..CHANNELS].try_into().expect("eight lanes"))
    }
    #[inline(always)]
    unsafe fn load_ptr(p: *const f32) -> Self {
        // SAFETY: the caller's promise
        Plain(unsafe { p.cast::<[f32; CHANNELS]>().read_unaligned() })
    }
    #[inline(always)]
    fn store_slice(self, s: &mut [f32]) {
        s[..CHANNELS].copy_from_slice(&self.0);
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller's promise
        unsafe { p.cast::<[f32; CHANNELS]>().write_unaligned(self.0) };
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Plain(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Plain(std::array::from_fn(|i| self.0[i] * o.0[i]))
    }
    #[inline(always)]
    fn transpose(rows: [Self; CHANNELS]) -> [Self; CHANNELS] {
        std::array::from_fn(|j| Plain(std::array::from_fn(|i| rows[i].0[j])))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Lanes, CHANNELS};
    use std::arch::x86_64::*;

    /// A 256-bit vector. Only made inside functions compiled with AVX2 enabled, which call
    /// these (always inlined) operations on a CPU that has it.
    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256);

    // SAFETY (every `unsafe` block below): the operations run inlined into code compiled for
    // AVX2 on a CPU that has it (the type's contract); loads and stores stay inside the slices
    // their length checks give, or where the caller of `store` promises.
    impl Lanes for Avx2 {
        #[inline(always)]
        fn zero() -> Self {
            Avx2(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            Avx2(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        fn from_array(a: [f32; CHANNELS]) -> Self {
            Avx2(unsafe { _mm256_loadu_ps(a.as_ptr()) })
        }
        #[inline(always)]
        fn to_array(self) -> [f32; CHANNELS] {
            let mut a = [0.0; CHANNELS];
            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), self.0) };
            a
        }
        #[inline(always)]
        fn load(s: &[f32]) -> Self {
            assert!(s.len() >= CHANNELS);
            Avx2(unsafe { _mm256_loadu_ps(s.as_ptr()) })
        }
        #[inline(always)]
        unsafe fn load_ptr(p: *const f32) -> Self {
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        fn store_slice(self, s: &mut [f32]) {
            assert!(s.len() >= CHANNELS);
            unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self.0) };
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) };
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn transpose(r: [Self; CHANNELS]) -> [Self; CHANNELS] {
            unsafe {
                // pairs of rows interleaved, then quadruples, then the 128-bit halves swapped
                let t0 = _mm256_unpacklo_ps(r[0].0, r[1].0);
                let t1 = _mm256_unpackhi_ps(r[0].0, r[1].0);
                let t2 = _mm256_unpacklo_ps(r[2].0, r[3].0);
                let t3 = _mm256_unpackhi_ps(r[2].0, r[3].0);
                let t4 = _mm256_unpacklo_ps(r[4].0, r[5].0);
                let t5 = _mm256_unpackhi_ps(r[4].0, r[5].0);
                let t6 = _mm256_unpacklo_ps(r[6].0, r[7].0);
                let t7 = _mm256_unpackhi_ps(r[6].0, r[7].0);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ]
                .map(Avx2)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::cpu::conv::DepthwisePlane;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Eight channels on random planes, windows, strides, dilations and pads: the interleaved
        /// kernel (its AVX2 path where the CPU has it, and its portable one) gives the bits of
        /// the one-channel kernel, whose own test holds it to the definition.
        #[test]
        fn eight_channels_give_the_one_channel_bits(
            (h, wd) in (1usize..20, 1usize..40),
            (kh, kw) in (1i64..6, 1i64..6),
            strides in [1i64..4, 1i64..4],
            dilations in [1i64..3, 1i64..3],
            pads in [0i64..4, 0i64..4, 0i64..4, 0i64..4],
            seed in any::<u64>(),
        ) {
            let axes = super::super::test_axes((h, wd), [kh, kw], strides, dilations, pads);
            prop_assume!(axes.is_some());
            let axes = axes.unwrap();
            let (Some(blocked), Some(plane)) =
                (Depthwise8::new((h, wd), axes), DepthwisePlane::new((h, wd), axes))
            else {
                return Err(TestCaseError::reject("a padded plane past the budget"));
            };
            let size = (axes[0].out * axes[1].out) as usize;
            let mut draw = super::super::test_values(seed);
            let src: Vec<Vec<f32>> = (0..CHANNELS).map(|_| draw(h * wd)).collect();
            let filt: Vec<Vec<f32>> = (0..CHANNELS).map(|_| draw((kh * kw) as usize)).collect();
            let bias: [f32; CHANNELS] = draw(CHANNELS).try_into().unwrap();
            let mut one = Vec::new();
            let mut scratch = vec![0.0f32; plane.scratch_len()];
            for c in 0..CHANNELS {
                let mut out = vec![bias[c]; size];
                plane.run(&src[c], &filt[c], &mut out, &mut scratch);
                one.extend(out);
            }
            let mut padded = vec![0.0f32; blocked.scratch_len()];
            let srcs = std::array::from_fn(|c| &src[c][..]);
            let filts = std::array::from_fn(|c| &filt[c][..]);
            for portable in [false, true] {
                let mut eight = vec![f32::NAN; CHANNELS * size];
                let dst = std::array::from_fn(|c| eight[c * size..].as_mut_ptr());
                // SAFETY: eight disjoint planes of `size` elements
                unsafe {
                    if portable {
                        blocked.run_lanes::<Plain>(srcs, filts, bias, dst, &mut padded);
                    } else {
                        blocked.run(srcs, filts, bias, dst, &mut padded);
                    }
                }
                prop_assert_eq!(
                    eight.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "portable: {}", portable
                );
            }
        }
    }
}
