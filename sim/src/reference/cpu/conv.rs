//! Convolution: im2col + GEMM per group (1×1 stride-1 convolutions multiply the input directly),
//! and a direct kernel for depthwise layers, where a GEMM would be one row tall.

use std::cell::Cell;
use std::ops::Range;

use rayon::prelude::*;

use super::super::value::Array;
use super::blocks::{whole_blocks, SharedOut};
use super::depthwise::{Depthwise8, CHANNELS};
use super::elementwise::Activation;
use super::linear::{matmul_ptr, MatRef};
use super::Res;
use etch_ir::op::{Window, WindowAxis};

/// A 2-D view of a window op: 1-D ops get a unit leading axis.
pub(crate) fn lift_2d(axes: Vec<WindowAxis>) -> Res<[WindowAxis; 2]> {
    let unit = WindowAxis {
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad_begin: 0,
        pad_end: 0,
        out: 1,
    };
    match axes.as_slice() {
        [w] => Ok([unit, *w]),
        [h, w] => Ok([*h, *w]),
        _ => Err(format!(
            "{} spatial dims are not supported (1 or 2 are)",
            axes.len()
        )),
    }
}

/// A convolution's extents, checked against each other: what any executor needs to slide it.
pub(crate) struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Output channels, and per group: input channels, output channels.
    pub m: usize,
    pub group: usize,
    pub cg: usize,
    pub mg: usize,
    pub axes: [WindowAxis; 2],
    pub out_shape: Vec<usize>,
}

impl ConvGeom {
    /// Checks input `x`, weight `w` and bias length against each other and resolves the window.
    pub fn new(
        x: &[usize],
        w: &[usize],
        bias: Option<usize>,
        window: &Window,
        group: usize,
    ) -> Res<ConvGeom> {
        let rank = x.len();
        if rank < 3 || w.len() != rank {
            return Err(format!(
                "Conv needs input and weight of the same rank ≥ 3, got {x:?} and {w:?}"
            ));
        }
        let (n, c) = (x[0], x[1]);
        let (m, cg) = (w[0], w[1]);
        if group == 0 || c != cg * group || m % group != 0 {
            return Err(format!(
                "input channels {c}, weight {w:?} and group {group} do not fit"
            ));
        }
        let spatial: Vec<i64> = x[2..].iter().map(|&d| d as i64).collect();
        let kernel: Vec<i64> = w[2..].iter().map(|&d| d as i64).collect();
        let [ah, aw] = lift_2d(window.resolve(&spatial, &kernel)?)?;
        if let Some(b) = bias {
            if b != m {
                return Err(format!(
                    "the bias has {b} values but the conv has {m} output channels"
                ));
            }
        }
        let (h, wd) = if rank == 4 { (x[2], x[3]) } else { (1, x[2]) };
        let mut out_shape = vec![n, m];
        if rank == 4 {
            out_shape.push(ah.out as usize);
        }
        out_shape.push(aw.out as usize);
        Ok(ConvGeom {
            n,
            c,
            h,
            w: wd,
            m,
            group,
            cg,
            mg: m / group,
            axes: [ah, aw],
            out_shape,
        })
    }

    /// Rows of the unrolled receptive field: `cg·kh·kw`.
    pub fn k(&self) -> usize {
        self.cg * (self.axes[0].kernel * self.axes[1].kernel) as usize
    }

    /// Output pixels per channel: `ho·wo`.
    pub fn pixels(&self) -> usize {
        (self.axes[0].out * self.axes[1].out) as usize
    }
}

/// ONNX Conv on an `[N, C, (H,) W]` input; `filters`, the constant weights in Winograd's form
/// (`winograd::filters`), lets a 3×3 stride-1 layer run by Winograd's algorithm; `post`, an
/// activation applied to each output plane as soon as it is complete (while it is in cache).
pub fn conv(
    x: &Array<f32>,
    w: &Array<f32>,
    b: Option<&Array<f32>>,
    window: &Window,
    group: usize,
    filters: Option<&[f32]>,
    post: Option<Activation>,
) -> Res<Array<f32>> {
    let geom = ConvGeom::new(&x.shape, &w.shape, b.map(|b| b.data.len()), window, group)?;
    let ConvGeom {
        n,
        c,
        h,
        w: wd,
        m,
        cg,
        mg,
        axes: [ah, aw],
        ..
    } = geom;
    let (k, p) = (geom.k(), geom.pixels());
    let pointwise = ah.kernel == 1
        && aw.kernel == 1
        && ah.stride == 1
        && aw.stride == 1
        && [ah.pad_begin, ah.pad_end, aw.pad_begin, aw.pad_end] == [0; 4];
    let depthwise_plane = (cg == 1 && mg == 1 && !pointwise)
        .then(|| DepthwisePlane::new((h, wd), [ah, aw]))
        .flatten();
    let winograd = filters.filter(|_| depthwise_plane.is_none() && super::winograd::suits(&geom));
    // every path writes each output element once, block by block (on the block's thread): the
    // one-channel depthwise and Winograd kernels accumulate onto the bias they write first; the
    // eight-channel depthwise kernel adds the bias to its sums as it stores them; the matrix
    // product writes its sums, then adds the bias
    let len = n * m * p;
    let mut out = Vec::new();
    let shared = SharedOut::fresh(&mut out, len);
    let biases = b.map(|b| &b.data[..]);
    if let Some(plane) = depthwise_plane {
        depthwise(x, w, &shared, biases, &plane, [ah, aw], post);
    } else if let Some(u) = winograd {
        for img in 0..n {
            super::winograd::conv3x3(
                &x.data[img * c * h * wd..(img + 1) * c * h * wd],
                u,
                (&shared, img * m * p),
                biases,
                &geom,
                post,
            );
        }
    } else {
        // a block of whole output rows at a time: its unrolled input, products and activation
        // stay in cache from one to the next
        let (ho, wo) = (ah.out as usize, aw.out as usize);
        let block_rows = (BLOCK_PIXELS / wo.max(1)).clamp(1, ho.max(1));
        let blocks: Vec<(usize, usize, usize)> = (0..n)
            .flat_map(|img| (0..group).map(move |g| (img, g)))
            .flat_map(|(img, g)| (0..ho).step_by(block_rows).map(move |r0| (img, g, r0)))
            .collect();
        let whole = whole_blocks(blocks.len());
        // without enough blocks for every thread, each block's output channels are split among
        // them (each thread reads its share of the weights)
        let chunks = channel_chunks(
            mg,
            if whole {
                1
            } else {
                rayon::current_num_threads()
            },
        );
        let run = |&(img, g, r0): &(usize, usize, usize)| {
            let xin = &x.data[(img * c + g * cg) * h * wd..(img * c + (g + 1) * cg) * h * wd];
            let rows = r0..(r0 + block_rows).min(ho);
            let (p0, np) = (r0 * wo, rows.len() * wo);
            let mut col = if pointwise {
                Vec::new()
            } else {
                take_scratch(k * np)
            };
            let rhs = if pointwise {
                MatRef {
                    data: &xin[p0..],
                    rows: k,
                    cols: np,
                    rs: p,
                    cs: 1,
                }
            } else {
                im2col(xin, (h, wd), [ah, aw], rows, &mut col[..k * np], whole);
                MatRef::row_major(&col[..k * np], k, np)
            };
            // output channels `chans` of the group, columns p0..p0 + np of their planes
            let product = |chans: &Range<usize>| {
                let filters = &w.data[(g * mg + chans.start) * k..(g * mg + chans.end) * k];
                let lhs = MatRef::row_major(filters, chans.len(), k);
                let first_plane = img * m + g * mg + chans.start;
                let first = first_plane * p + p0;
                let dst = shared.rows(first, chans.len(), np, p);
                // SAFETY: these columns of these planes are this job's alone
                unsafe { matmul_ptr(dst, p, lhs, rhs, false, false) };
                for o in 0..chans.len() {
                    // SAFETY: as above, one plane's columns, just written
                    let sums = unsafe { shared.part(first + o * p..first + o * p + np) };
                    epilogue(sums, bias(biases, first_plane + o, m), post);
                }
            };
            if chunks.len() > 1 {
                chunks.par_iter().for_each(product);
            } else {
                chunks.iter().for_each(product);
            }
            put_scratch(col);
        };
        if whole {
            blocks.par_iter().for_each(run);
        } else {
            blocks.iter().for_each(run);
        }
    }
    // SAFETY: the path taken wrote each of the `len` elements
    unsafe { out.set_len(len) };
    Ok(Array::new(geom.out_shape, out))
}

/// `m` output channels split into at most `parts` runs, each a whole number of the matrix
/// kernels' 16 rows where there are enough.
fn channel_chunks(m: usize, parts: usize) -> Vec<Range<usize>> {
    let len = m.div_ceil(parts.max(1)).next_multiple_of(16).max(1);
    (0..m)
        .step_by(len)
        .map(|c0| c0..(c0 + len).min(m))
        .collect()
}

/// A block of a matrix product's sums becomes the convolution's output: plus the bias, then
/// the activation (as the unfused ops compute it).
fn epilogue(sums: &mut [f32], bias: f32, post: Option<Activation>) {
    match post {
        Some(post) => post.run_after_bias(sums, bias),
        None => sums.iter_mut().for_each(|v| *v += bias),
    }
}

/// Output pixels a block of the matrix-product path aims at: its unrolled input (`k` rows of
/// them), products and activation stay in the core's cache.
const BLOCK_PIXELS: usize = 1024;

thread_local! {
    /// The im2col matrix of the last convolution on this thread, kept so that repeated runs reuse
    /// it instead of allocating (and page-faulting in) several MB per convolution.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// This thread's scratch buffer, at least `len` long (its contents are stale). Taken out rather
/// than borrowed, so a nested call (rayon may run another job on this thread while it waits) gets
/// a fresh one instead of a conflict.
pub(crate) fn take_scratch(len: usize) -> Vec<f32> {
    let mut v = SCRATCH.take();
    if v.len() < len {
        v = vec![0.0; len];
    }
    v
}

/// Returns a scratch buffer for the next convolution on this thread (the larger one is kept).
pub(crate) fn put_scratch(v: Vec<f32>) {
    let old = SCRATCH.take();
    SCRATCH.set(if v.len() >= old.len() { v } else { old });
}

/// The output columns `first..end` whose kernel column `kj` lands inside an input row of `w`
/// columns, and the input column `j0` the first of them reads (the next ones read every
/// `stride`-th column from there; 0 for an empty run).
pub(crate) fn column_run(aw: WindowAxis, kj: usize, w: usize) -> (usize, usize, usize) {
    let wo = aw.out as usize;
    let shift = kj as i64 * aw.dilation - aw.pad_begin;
    let first = if shift >= 0 {
        0
    } else {
        ((-shift + aw.stride - 1) / aw.stride) as usize
    }
    .min(wo);
    let end = ((w as i64 - shift + aw.stride - 1).max(0) / aw.stride).clamp(first as i64, wo as i64)
        as usize;
    // an empty run (the tap lands on padding in every column) reads nothing, from column 0
    let j0 = if first < end {
        (first as i64 * aw.stride + shift) as usize
    } else {
        0
    };
    (first, end, j0)
}

/// A 2-D window's kernel rows and columns and output rows and columns.
fn extents([ah, aw]: [WindowAxis; 2]) -> (usize, usize, usize, usize) {
    (
        ah.kernel as usize,
        aw.kernel as usize,
        ah.out as usize,
        aw.out as usize,
    )
}

/// Unrolls the receptive fields of one group's output rows `rows` into a
/// `[cg·kh·kw, rows·wo]` matrix (zeros for padding); on this thread alone when `this_thread`
/// (the caller runs a block per thread), else split among the threads.
pub(crate) fn im2col(
    x: &[f32],
    (h, w): (usize, usize),
    [ah, aw]: [WindowAxis; 2],
    rows: Range<usize>,
    col: &mut [f32],
    this_thread: bool,
) {
    let (kh, kw, _, wo) = extents([ah, aw]);
    let stride = aw.stride as usize;
    col.par_chunks_mut(rows.len() * wo)
        .with_min_len(if this_thread { usize::MAX } else { 1 })
        .enumerate()
        .for_each(|(row, dst)| {
            let (ch, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            let (first, end, j0) = column_run(aw, kj, w);
            for (oi, line) in rows.clone().zip(dst.chunks_exact_mut(wo)) {
                let ii = (oi as i64) * ah.stride - ah.pad_begin + (ki as i64) * ah.dilation;
                if ii < 0 || ii >= h as i64 || first == end {
                    line.fill(0.0);
                    continue;
                }
                let src = &plane[ii as usize * w..(ii as usize + 1) * w];
                let (head, rest) = line.split_at_mut(first);
                let (body, tail) = rest.split_at_mut(end - first);
                head.fill(0.0);
                tail.fill(0.0);
                if stride == 1 {
                    body.copy_from_slice(&src[j0..j0 + body.len()]);
                } else {
                    body.iter_mut()
                        .zip(src[j0..].iter().step_by(stride))
                        .for_each(|(v, &s)| *v = s);
                }
            }
        });
}

/// One filter per channel: a direct sliding window, parallel over channels, added onto `out`.
/// Each channel is first laid out zero-padded on every side (and, for a column stride `s`, each
/// row split into `s` phases so that every tap reads a contiguous run); then output rows are
/// computed four at a time in blocks of 8 columns held in registers, every output summing all its
/// taps in kernel order from zero (multiply then add, never fused, so every CPU gives the same
/// sums).
fn depthwise(
    x: &Array<f32>,
    w: &Array<f32>,
    out: &SharedOut,
    biases: Option<&[f32]>,
    plane: &DepthwisePlane,
    [ah, aw]: [WindowAxis; 2],
    post: Option<Activation>,
) {
    let (kh, kw, ho, wo) = extents([ah, aw]);
    let (n, m, c, h, wd) = (x.shape[0], w.shape[0], x.shape[1], plane.h, plane.wd);
    let (taps, size) = (kh * kw, ho * wo);
    // blocks of eight channels on the interleaved kernel where it takes the layer and pays, the
    // other channels one at a time: (image, first channel, channels)
    let blocked = Depthwise8::new((h, wd), [ah, aw]).filter(Depthwise8::pays);
    let full_blocks = if blocked.is_some() { m / CHANNELS } else { 0 };
    let jobs: Vec<(usize, usize, usize)> = (0..n)
        .flat_map(|img| {
            let blocks = (0..full_blocks).map(move |b| (img, b * CHANNELS, CHANNELS));
            blocks.chain((full_blocks * CHANNELS..m).map(move |oc| (img, oc, 1)))
        })
        .collect();
    // group = channels: output channel oc reads input channel oc·c/m
    let input = |img: usize, oc: usize| {
        let ic = oc * c / m;
        &x.data[(img * c + ic) * h * wd..(img * c + ic + 1) * h * wd]
    };
    let filter = |oc: usize| &w.data[oc * taps..(oc + 1) * taps];
    jobs.into_par_iter().for_each_init(
        || (Vec::new(), Vec::new()),
        |(padded, padded8), (img, oc, count)| {
            let first = img * m + oc;
            if let (Some(blocked), CHANNELS) = (&blocked, count) {
                padded8.resize(blocked.scratch_len(), 0.0);
                let dst = std::array::from_fn(|i| out.rows((first + i) * size, 1, size, size));
                let bias = std::array::from_fn(|i| bias(biases, first + i, m));
                let (src, filt) = (
                    std::array::from_fn(|i| input(img, oc + i)),
                    std::array::from_fn(|i| filter(oc + i)),
                );
                // SAFETY: these eight planes are this job's alone
                unsafe { blocked.run(src, filt, bias, dst, padded8) };
            } else {
                padded.resize(plane.scratch_len(), 0.0);
                // SAFETY: this channel's plane, written by this job alone
                let dst =
                    unsafe { out.fill(first * size..(first + 1) * size, bias(biases, first, m)) };
                plane.run(input(img, oc), filter(oc), dst, padded);
            }
            if let Some(post) = post {
                for p in first..first + count {
                    // SAFETY: written above, this job's alone
                    post.run(unsafe { out.part(p * size..(p + 1) * size) });
                }
            }
        },
    );
}

/// The bias of output plane `plane` (of any image) of a layer of `m` channels.
pub(crate) fn bias(biases: Option<&[f32]>, plane: usize, m: usize) -> f32 {
    biases.map_or(0.0, |b| b[plane % m])
}

/// Output columns a depthwise block computes at once: one 256-bit vector of f32.
const LANES: usize = 8;

/// Output rows a depthwise block computes at once: independent sums the CPU overlaps.
const ROWS: usize = 4;

/// One depthwise plane's geometry, shared by every channel.
pub(crate) struct DepthwisePlane {
    h: usize,
    wd: usize,
    stride: usize,
    wo: usize,
    /// `wo` rounded up to whole blocks of `LANES`.
    wo_blocks: usize,
    /// Length of one phase of a padded row.
    phase_len: usize,
    /// Padded rows, the first `pad_top` and those past the input zero.
    rows: usize,
    /// Distance between the first padded rows of consecutive output rows.
    row_step: usize,
    pad_top: i64,
    /// Per column phase: its first and end index inside the input, and the input column of the first.
    phases: Vec<(usize, usize, usize)>,
    /// Per tap, in kernel order: its offset from the output row's first padded row.
    taps: Vec<usize>,
}

impl DepthwisePlane {
    /// The geometry of an `h×wd` input plane slid over by the window `[ah, aw]`; `None` where its
    /// padded copy would be larger than twice the input plane or one channel's im2col matrix (a
    /// huge stride, dilation or pad that a hostile model may give): the grouped GEMM takes those.
    pub(crate) fn new(
        (h, wd): (usize, usize),
        [ah, aw]: [WindowAxis; 2],
    ) -> Option<DepthwisePlane> {
        let (kh, kw, ho, wo) = extents([ah, aw]);
        let [sh, sw, dh, dw] = [ah.stride, aw.stride, ah.dilation, aw.dilation].map(|v| v as usize);
        let stride = sw;
        // output columns rounded up to whole blocks: the extra lanes read zeros and are dropped
        let wo_blocks = wo.div_ceil(LANES) * LANES;
        let phase_len = wo_blocks.checked_add(kw.checked_sub(1)?.checked_mul(dw)? / stride)?;
        let row_len = phase_len.checked_mul(stride)?;
        let rows = (ho.checked_sub(1)?.checked_mul(sh)?)
            .checked_add(kh.checked_sub(1)?.checked_mul(dh)?)?
            .checked_add(1)?;
        let budget = (h.saturating_mul(wd))
            .max(kh.saturating_mul(kw).saturating_mul(ho).saturating_mul(wo))
            .saturating_mul(2)
            .saturating_add(4096);
        if rows.checked_mul(row_len)? > budget || stride > budget {
            return None;
        }
        // each phase's run of input columns: padded column q·stride + p is input column
        // q·stride + p − pad_begin
        let phases = (0..stride)
            .map(|p| {
                let lead = aw.pad_begin - p as i64;
                let first = (lead.max(0) as usize).div_ceil(stride).min(phase_len);
                let end = ((wd as i64 + lead).max(0) as usize)
                    .div_ceil(stride)
                    .clamp(first, phase_len);
                let start = ((first * stride) as i64 - lead).max(0) as usize;
                (first, end, start)
            })
            .collect();
        // where each tap reads, relative to its output row's first padded row: kernel order
        let taps = (0..kh)
            .flat_map(|ki| {
                (0..kw).map(move |kj| {
                    let shift = kj * dw;
                    ki * dh * row_len + (shift % stride) * phase_len + shift / stride
                })
            })
            .collect();
        Some(DepthwisePlane {
            h,
            wd,
            stride,
            wo,
            wo_blocks,
            phase_len,
            rows,
            row_step: sh * row_len,
            pad_top: ah.pad_begin,
            phases,
            taps,
        })
    }

    /// The length of the scratch [`DepthwisePlane::run`] takes.
    pub(crate) fn scratch_len(&self) -> usize {
        self.rows * self.phase_len * self.stride
    }

    /// Adds the plane `src` convolved with `filt` onto `dst`, with 256-bit vectors where the CPU
    /// has them; `padded` is scratch ([`DepthwisePlane::scratch_len`] long).
    pub(crate) fn run(&self, src: &[f32], filt: &[f32], dst: &mut [f32], padded: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature the function enables
            unsafe { self.run_avx2(src, filt, dst, padded) };
            return;
        }
        self.run_plain(src, filt, dst, padded);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, src: &[f32], filt: &[f32], dst: &mut [f32], padded: &mut [f32]) {
        self.pad(src, padded);
        self.each_block(
            dst,
            // SAFETY (both): the CPU has AVX2, which `run_avx2` was called for
            |base, block| unsafe { self.add_rows_avx2::<ROWS>(padded, filt, base, block) },
            |base, line| unsafe { self.add_rows_avx2::<1>(padded, filt, base, line) },
        );
    }

    /// `add_rows` in 256-bit vectors: the same products and sums in the same order.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_rows_avx2<const R: usize>(
        &self,
        padded: &[f32],
        filt: &[f32],
        base: usize,
        lines: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let last_tap = self.taps.last().copied().unwrap_or(0);
        // every read below lies inside `padded`, and every tap has its weight
        assert!(base + (R - 1) * self.row_step + last_tap + self.wo_blocks <= padded.len());
        assert!(filt.len() >= self.taps.len() && lines.len() >= R * self.wo);
        let p = padded.as_ptr();
        for j in (0..self.wo_blocks).step_by(LANES) {
            // SAFETY: the assertions above bound every load; AVX2 is enabled
            unsafe {
                let mut acc = [_mm256_setzero_ps(); R];
                for (&tap, &wv) in self.taps.iter().zip(filt) {
                    let wv = _mm256_set1_ps(wv);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let v = _mm256_loadu_ps(p.add(base + r * self.row_step + tap + j));
                        *acc = _mm256_add_ps(*acc, _mm256_mul_ps(v, wv));
                    }
                }
                for (line, acc) in lines.chunks_exact_mut(self.wo).zip(acc) {
                    if j + LANES <= self.wo {
                        let o = line.as_mut_ptr().add(j);
                        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), acc));
                    } else {
                        let mut lanes = [0.0f32; LANES];
                        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
                        for (o, a) in line[j..].iter_mut().zip(lanes) {
                            *o += a;
                        }
                    }
                }
            }
        }
    }

    fn run_plain(&self, src: &[f32], filt: &[f32], dst: &mut [f32], padded: &mut [f32]) {
        self.pad(src, padded);
        self.each_block(
            dst,
            |base, block| self.add_rows::<ROWS>(padded, filt, base, block),
            |base, line| self.add_rows::<1>(padded, filt, base, line),
        );
    }

    /// Hands `dst`'s output rows to `four` in blocks of `ROWS` and the rest to `one` a row at a
    /// time, each with the padded offset its first row reads from.
    fn each_block(
        &self,
        dst: &mut [f32],
        mut four: impl FnMut(usize, &mut [f32]),
        mut one: impl FnMut(usize, &mut [f32]),
    ) {
        let (mut blocks, mut base) = (dst.chunks_exact_mut(self.wo * ROWS), 0);
        for block in blocks.by_ref() {
            four(base, block);
            base += ROWS * self.row_step;
        }
        for line in blocks.into_remainder().chunks_exact_mut(self.wo) {
            one(base, line);
            base += self.row_step;
        }
    }

    /// Lays the input plane `src` out in `padded`: zero rows and columns around it, each row in
    /// its column phases.
    #[inline(always)]
    fn pad(&self, src: &[f32], padded: &mut [f32]) {
        let (stride, phase_len) = (self.stride, self.phase_len);
        for (r, row) in padded.chunks_exact_mut(phase_len * stride).enumerate() {
            let ii = r as i64 - self.pad_top;
            if ii < 0 || ii >= self.h as i64 {
                row.fill(0.0);
                continue;
            }
            let input = &src[ii as usize * self.wd..(ii as usize + 1) * self.wd];
            for (phase, &(first, end, start)) in row.chunks_exact_mut(phase_len).zip(&self.phases) {
                phase[..first].fill(0.0);
                phase[end..].fill(0.0);
                let inside = &mut phase[first..end];
                if inside.is_empty() {
                    continue;
                }
                if stride == 1 {
                    inside.copy_from_slice(&input[start..start + inside.len()]);
                } else {
                    inside
                        .iter_mut()
                        .zip(input[start..].iter().step_by(stride))
                        .for_each(|(v, &s)| *v = s);
                }
            }
        }
    }

    /// Adds `R` consecutive output rows (`lines`, the first reading from padded offset `base`)
    /// onto `lines`, `LANES` columns at a time.
    fn add_rows<const R: usize>(
        &self,
        padded: &[f32],
        filt: &[f32],
        base: usize,
        lines: &mut [f32],
    ) {
        for j in (0..self.wo_blocks).step_by(LANES) {
            let mut acc = [[0.0f32; LANES]; R];
            for (&tap, &wv) in self.taps.iter().zip(filt) {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let at = base + r * self.row_step + tap + j;
                    let run: &[f32; LANES] = padded[at..at + LANES].try_into().expect("a block");
                    for (a, &v) in acc.iter_mut().zip(run) {
                        *a += v * wv;
                    }
                }
            }
            for (line, acc) in lines.chunks_exact_mut(self.wo).zip(acc) {
                if j + LANES <= self.wo {
                    let out: &mut [f32; LANES] =
                        (&mut line[j..j + LANES]).try_into().expect("a block");
                    for (o, a) in out.iter_mut().zip(acc) {
                        *o += a;
                    }
                } else {
                    for (o, a) in line[j..].iter_mut().zip(acc) {
                        *o += a;
                    }
                }
            }
        }
    }
}

/// A transposed convolution's shapes: `[n, c, …]` input, `[c, m/group, …]` weight, and the
/// output axes `Window::transposed` gives (shared by the CPU and GPU kernels).
pub(crate) struct TransposedGeom {
    pub n: usize,
    pub c: usize,
    /// Input channels per group.
    pub cg: usize,
    pub m: usize,
    /// Output channels per group.
    pub mg: usize,
    pub axes: Vec<WindowAxis>,
    pub out_shape: Vec<usize>,
}

impl TransposedGeom {
    pub fn new(
        x: &[usize],
        w: &[usize],
        bias: Option<usize>,
        window: &Window,
        group: usize,
        output_padding: Option<&[i64]>,
    ) -> Res<TransposedGeom> {
        let rank = x.len();
        if rank < 3 || w.len() != rank {
            return Err(format!(
                "ConvTranspose takes an input of rank ≥ 3 and a weight of the same rank, not {x:?} and {w:?}"
            ));
        }
        let (n, c, mg) = (x[0], x[1], w[1]);
        if group == 0 || c % group != 0 || w[0] != c {
            return Err(format!(
                "the input has {c} channels but the weight {w:?} with group {group} does not match"
            ));
        }
        let (cg, m) = (c / group, mg * group);
        if bias.is_some_and(|b| b != m) {
            return Err(format!("the bias must have {m} values"));
        }
        let spatial: Vec<i64> = x[2..].iter().map(|&d| d as i64).collect();
        let kernel: Vec<i64> = w[2..].iter().map(|&d| d as i64).collect();
        let axes = window.transposed(&spatial, &kernel, output_padding)?;
        let mut out_shape = vec![n, m];
        out_shape.extend(axes.iter().map(|a| a.out as usize));
        super::output_len(&out_shape, 4)?;
        Ok(TransposedGeom {
            n,
            c,
            cg,
            m,
            mg,
            axes,
            out_shape,
        })
    }
}

/// A transposed convolution (`ConvTranspose`), any number of spatial axes: every input pixel adds
/// its value times the kernel into the output, `stride` apart (`Window::transposed` gives the
/// geometry); the output starts as the bias. Weights are `[C, M/group, k…]`.
pub fn conv_transpose(
    x: &Array<f32>,
    w: &Array<f32>,
    b: Option<&Array<f32>>,
    window: &Window,
    group: usize,
    output_padding: Option<&[i64]>,
) -> Res<Array<f32>> {
    let TransposedGeom {
        n,
        c,
        cg,
        m,
        mg,
        axes,
        out_shape,
    } = TransposedGeom::new(
        &x.shape,
        &w.shape,
        b.map(|b| b.data.len()),
        window,
        group,
        output_padding,
    )?;
    let out_sp = out_shape[2..].to_vec();
    let (in_px, out_px, k_px): (usize, usize, usize) = (
        x.shape[2..].iter().product(),
        out_sp.iter().product(),
        w.shape[2..].iter().product(),
    );
    let mut y = vec![0.0f32; n * m * out_px];
    if let Some(b) = b {
        for (plane, chunk) in y.chunks_mut(out_px.max(1)).enumerate() {
            chunk.fill(b.data[plane % m]);
        }
    }
    let (in_strides, k_strides, out_strides) = (
        etch_ir::tensor::strides(&x.shape[2..]),
        etch_ir::tensor::strides(&w.shape[2..]),
        etch_ir::tensor::strides(&out_sp),
    );
    // the output offset of input pixel p and kernel tap t, if it lands inside the output
    let target = |p: usize, t: usize| -> Option<usize> {
        let mut off = 0;
        for (k, a) in axes.iter().enumerate() {
            let i = (p / in_strides[k]) % x.shape[2 + k];
            let j = (t / k_strides[k]) % w.shape[2 + k];
            let o = i as i64 * a.stride + j as i64 * a.dilation - a.pad_begin;
            if o < 0 || o >= a.out {
                return None;
            }
            off += o as usize * out_strides[k];
        }
        Some(off)
    };
    let taps: Vec<Vec<Option<usize>>> = (0..in_px)
        .map(|p| (0..k_px).map(|t| target(p, t)).collect())
        .collect();
    for img in 0..n {
        for g in 0..group {
            for ci in 0..cg {
                let ch = g * cg + ci;
                let xin = &x.data[(img * c + ch) * in_px..][..in_px];
                for co in 0..mg {
                    let wk = &w.data[(ch * mg + co) * k_px..][..k_px];
                    let yout = &mut y[(img * m + g * mg + co) * out_px..][..out_px];
                    for (p, &v) in xin.iter().enumerate() {
                        for (t, &wv) in wk.iter().enumerate() {
                            if let Some(o) = taps[p][t] {
                                yout[o] += v * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Array::new(out_shape, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The depthwise kernel on random planes, windows, strides, dilations and pads: each
        /// output within a few roundings of the definition's sum (in f64), and the 256-bit path
        /// bit for bit the portable one.
        #[test]
        fn depthwise_is_the_definition_and_the_same_on_every_path(
            (h, wd) in (1usize..14, 1usize..40),
            (kh, kw) in (1i64..6, 1i64..6),
            strides in [1i64..4, 1i64..4],
            dilations in [1i64..3, 1i64..3],
            pads in [0i64..4, 0i64..4, 0i64..4, 0i64..4],
            seed in any::<u64>(),
        ) {
            let axes = super::super::test_axes((h, wd), [kh, kw], strides, dilations, pads);
            prop_assume!(axes.is_some());
            let [ah, aw] = axes.unwrap();
            let mut draw = super::super::test_values(seed);
            let (src, filt) = (draw(h * wd), draw((kh * kw) as usize));
            let (ho, wo) = (ah.out as usize, aw.out as usize);
            let plane = DepthwisePlane::new((h, wd), [ah, aw]).expect("a plane inside the budget");
            let mut padded = vec![0.0f32; plane.scratch_len()];
            let (mut fast, mut plain) = (vec![0.5f32; ho * wo], vec![0.5f32; ho * wo]);
            plane.run(&src, &filt, &mut fast, &mut padded);
            plane.run_plain(&src, &filt, &mut plain, &mut padded);
            prop_assert_eq!(
                fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            for oi in 0..ho {
                for oj in 0..wo {
                    let (mut sum, mut size) = (0.5f64, 0.5f64);
                    for ki in 0..kh {
                        for kj in 0..kw {
                            let ii = oi as i64 * ah.stride + ki * ah.dilation - ah.pad_begin;
                            let ij = oj as i64 * aw.stride + kj * aw.dilation - aw.pad_begin;
                            if (0..h as i64).contains(&ii) && (0..wd as i64).contains(&ij) {
                                let t = src[ii as usize * wd + ij as usize] as f64
                                    * filt[(ki * kw + kj) as usize] as f64;
                                sum += t;
                                size += t.abs();
                            }
                        }
                    }
                    // each product and each of the taps + 1 additions rounds once, by at most
                    // 2^-24 of the sizes involved
                    let got = plain[oi * wo + oj] as f64;
                    let bound = (kh * kw + 2) as f64 * 2f64.powi(-24) * size;
                    prop_assert!(
                        (got - sum).abs() <= bound,
                        "output ({oi}, {oj}): {got} against {sum}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Each convolution path (1×1, im2col, depthwise, Winograd; with a fused activation or
        /// not) gives the same bits on two threads as on one: each thread running whole blocks
        /// of the output where there are enough, else a share of each block's channels. The
        /// blocks and shares split the output exactly, and each writes its part once.
        #[test]
        fn blocks_on_two_threads_give_the_one_thread_bits(
            path in 0usize..4,
            images in 1usize..3,
            (h, wd) in (20usize..48, 20usize..48),
            relu in any::<bool>(),
            seed in any::<u64>(),
        ) {
            // [pointwise, im2col (strided, grouped), depthwise, Winograd]: (c, m, kernel, stride, group)
            let (c, m, k, stride, group) = [(6, 40, 1, 1, 1), (6, 40, 3, 2, 2), (8, 8, 3, 1, 8), (16, 16, 3, 1, 1)][path];
            let pad = k as i64 / 2;
            let window = super::super::test_window(None, Some(vec![stride; 2]), vec![pad; 4], None);
            let (x_shape, w_shape) = (vec![images, c, h, wd], vec![m, c / group, k, k]);
            let mut draw = super::super::test_values(seed);
            let x = Array::new(x_shape, draw(images * c * h * wd));
            let w = Array::new(w_shape, draw(m * (c / group) * k * k));
            let b = Array::new(vec![m], draw(m));
            let u = (path == 3).then(|| super::super::winograd::filters(&w).expect("3×3 filters"));
            let post = relu.then_some(Activation::Relu);
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let y = pool.install(|| conv(&x, &w, Some(&b), &window, group, u.as_deref(), post));
                y.unwrap().data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            prop_assert_eq!(on(1), on(2));
        }
    }

    /// A stride, dilation or pad far past the input (as a hostile model may give) takes no
    /// scratch beyond the input or im2col size: the grouped GEMM runs it, and the result is the
    /// definition's.
    #[test]
    fn a_huge_stride_or_pad_takes_no_huge_scratch() {
        let x = Array::new(vec![1, 2, 1, 5], (0..10).map(|v| v as f32).collect());
        let w = Array::new(vec![2, 1, 1, 2], vec![1.0, 2.0, 3.0, 4.0]);
        for (strides, pads, dilations, want) in [
            // one output column: taps on columns 0 and 1
            (
                vec![1, 1 << 30],
                vec![0, 0, 0, 0],
                vec![1, 1],
                vec![2.0, 39.0],
            ),
            // the pads put only the middle output column's taps on the input
            (
                vec![1, 1 << 30],
                vec![0, 1 << 30, 0, 1 << 30],
                vec![1, 1],
                vec![0.0, 2.0, 0.0, 0.0, 39.0, 0.0],
            ),
            // taps 2^30 columns apart: only the first lands on the input
            (
                vec![1, 1],
                vec![0, 0, 0, 1 << 30],
                vec![1, 1 << 30],
                vec![0.0, 1.0, 2.0, 3.0, 4.0, 15.0, 18.0, 21.0, 24.0, 27.0],
            ),
        ] {
            let window = super::super::test_window(None, Some(strides), pads, Some(dilations));
            let axes = window.resolve(&[1, 5], &[1, 2]).unwrap();
            assert!(DepthwisePlane::new((1, 5), lift_2d(axes).unwrap()).is_none());
            let y = conv(&x, &w, None, &window, 2, None, None).unwrap();
            assert_eq!(y.data, want, "{window:?}");
        }
    }
}
