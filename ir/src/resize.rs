//! ONNX's `Resize` (opset 11 on) in the modes exporters write for upsampling: nearest and linear
//! interpolation, with the coordinate transformations and nearest roundings onnxruntime
//! implements. Shape inference and the CPU executor both read their geometry from here; each
//! coordinate is computed in float32 in onnxruntime's order, so nearest picks the same pixel.

/// How output values are interpolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    Nearest,
    /// Linear along every resized axis (bilinear for images).
    Linear,
}

/// `coordinate_transformation_mode`: where output coordinate `x` falls in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinates {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

/// `nearest_mode`: how a fractional input coordinate picks a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearestRounding {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// A `Resize` node's attributes, as etch computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resize {
    pub mode: Interpolation,
    pub coordinates: Coordinates,
    pub nearest: NearestRounding,
}

impl Resize {
    /// Reads the attributes; the error names an unsupported one and what it holds.
    pub fn parse(
        mode: Option<&str>,
        coordinates: Option<&str>,
        nearest: Option<&str>,
    ) -> Result<Resize, (&'static str, String)> {
        let mode = match mode.unwrap_or("nearest") {
            "nearest" => Interpolation::Nearest,
            "linear" => Interpolation::Linear,
            m => {
                return Err((
                    "mode",
                    format!(
                        "is \"{}\"; etch supports nearest and linear",
                        m.escape_debug()
                    ),
                ))
            }
        };
        let coordinates = match coordinates.unwrap_or("half_pixel") {
            "half_pixel" => Coordinates::HalfPixel,
            "pytorch_half_pixel" => Coordinates::PytorchHalfPixel,
            "align_corners" => Coordinates::AlignCorners,
            "asymmetric" => Coordinates::Asymmetric,
            c => return Err(("coordinate_transformation_mode", format!("is \"{}\"; etch supports half_pixel, pytorch_half_pixel, align_corners and asymmetric", c.escape_debug()))),
        };
        let nearest = match nearest.unwrap_or("round_prefer_floor") {
            "round_prefer_floor" => NearestRounding::RoundPreferFloor,
            "round_prefer_ceil" => NearestRounding::RoundPreferCeil,
            "floor" => NearestRounding::Floor,
            "ceil" => NearestRounding::Ceil,
            n => return Err(("nearest_mode", format!("is \"{}\"; etch supports round_prefer_floor, round_prefer_ceil, floor and ceil", n.escape_debug()))),
        };
        Ok(Resize {
            mode,
            coordinates,
            nearest,
        })
    }

    /// The input coordinate of output coordinate `x` along an axis resized from `len_in` to
    /// `len_out` with scale `scale` (onnxruntime's `GetOriginalCoordinate`, in float32).
    pub fn original(self, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
        let xf = x as f32;
        match self.coordinates {
            Coordinates::HalfPixel => (xf + 0.5) / scale - 0.5,
            Coordinates::PytorchHalfPixel if len_out > 1 => (xf + 0.5) / scale - 0.5,
            Coordinates::PytorchHalfPixel => 0.0,
            Coordinates::AlignCorners if len_out == 1 => 0.0,
            Coordinates::AlignCorners => xf * (len_in as f32 - 1.0) / (len_out as f32 - 1.0),
            Coordinates::Asymmetric => xf / scale,
        }
    }

    /// The input pixel nearest mode picks for input coordinate `c`, clamped to the axis.
    pub fn nearest_index(self, c: f32, len_in: usize) -> usize {
        let half = c.floor() + 0.5 == c;
        let i = match self.nearest {
            NearestRounding::RoundPreferFloor if half => c.floor(),
            NearestRounding::RoundPreferCeil if half => c.ceil(),
            NearestRounding::RoundPreferFloor | NearestRounding::RoundPreferCeil => c.round(),
            NearestRounding::Floor => c.floor(),
            NearestRounding::Ceil => c.ceil(),
        };
        (i.max(0.0) as usize).min(len_in.saturating_sub(1))
    }

    /// The two input pixels linear mode blends for input coordinate `c`, and their weights
    /// (onnxruntime's: the coordinate clamped to the axis; equal halves where both are one pixel).
    pub fn linear_taps(self, c: f32, len_in: usize) -> [(usize, f32); 2] {
        let last = len_in.saturating_sub(1);
        let c = c.max(0.0).min(last as f32);
        let i1 = (c as usize).min(last);
        let i2 = (i1 + 1).min(last);
        if i1 == i2 {
            return [(i1, 0.5), (i2, 0.5)];
        }
        let (d1, d2) = ((c - i1 as f32).abs(), (c - i2 as f32).abs());
        [(i1, d2), (i2, d1)]
    }
}

/// Output extents and per-axis scales from the `scales` or `sizes` input (exactly one given):
/// `out = trunc(scale · in)` in float32, or the sizes with `scale = out / in`.
pub fn geometry(
    input: &[usize],
    scales: Option<&[f32]>,
    sizes: Option<&[i64]>,
) -> Result<(Vec<usize>, Vec<f32>), String> {
    match (
        scales.filter(|s| !s.is_empty()),
        sizes.filter(|s| !s.is_empty()),
    ) {
        (Some(s), None) => {
            if s.len() != input.len() {
                return Err(format!(
                    "scales has {} values for a rank-{} input",
                    s.len(),
                    input.len()
                ));
            }
            if s.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
                return Err(format!("scales {s:?} must be positive"));
            }
            let out = input
                .iter()
                .zip(s)
                .map(|(&d, &v)| {
                    let o = v * d as f32;
                    if o > (1u64 << 40) as f32 {
                        Err(format!("a resized extent ({o}) is too large"))
                    } else {
                        Ok(o as usize)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((out, s.to_vec()))
        }
        (None, Some(z)) => {
            if z.len() != input.len() {
                return Err(format!(
                    "sizes has {} values for a rank-{} input",
                    z.len(),
                    input.len()
                ));
            }
            let out = z
                .iter()
                .map(|&v| {
                    usize::try_from(v).map_err(|_| format!("sizes {z:?} must not be negative"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let scales = out
                .iter()
                .zip(input)
                .map(|(&o, &i)| o as f32 / i.max(1) as f32)
                .collect();
            Ok((out, scales))
        }
        _ => Err("Resize needs exactly one of scales (input 3) and sizes (input 4)".into()),
    }
}
