//! Floats as onnx 1.23 prints them: C++ `std::to_chars` with no format, i.e. the shortest digits
//! that round-trip, in fixed or scientific notation, whichever is shorter (fixed on a tie). This is
//! on the printer's hot path (one call per weight), so it works on stack buffers.

/// Writes an f32 as `std::to_chars` does.
pub fn write_f32(out: &mut String, v: f32) {
    if !v.is_finite() {
        return write_special(out, v.is_nan(), v.is_sign_negative());
    }
    let bits = v.to_bits();
    let (exp_bits, frac) = (((bits >> 23) & 0xff) as i32, u128::from(bits & 0x7f_ffff));
    let (m, e) = if exp_bits == 0 {
        (frac, -149)
    } else {
        (frac | 1 << 23, exp_bits - 150)
    };
    let mut buf = ryu::Buffer::new();
    write_shortest(
        out,
        buf.format_finite(v),
        Exact {
            m,
            e,
            max_frac_bits: 14,
        },
    );
}

/// Writes an f64 as `std::to_chars` does.
pub fn write_f64(out: &mut String, v: f64) {
    if !v.is_finite() {
        return write_special(out, v.is_nan(), v.is_sign_negative());
    }
    let bits = v.to_bits();
    let (exp_bits, frac) = (
        ((bits >> 52) & 0x7ff) as i32,
        u128::from(bits & 0xf_ffff_ffff_ffff),
    );
    let (m, e) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, exp_bits - 1075)
    };
    let mut buf = ryu::Buffer::new();
    write_shortest(
        out,
        buf.format_finite(v),
        Exact {
            m,
            e,
            max_frac_bits: 24,
        },
    );
}

fn write_special(out: &mut String, nan: bool, negative: bool) {
    out.push_str(match (nan, negative) {
        (true, false) => "nan",
        (true, true) => "-nan",
        (false, false) => "inf",
        (false, true) => "-inf",
    });
}

/// The exact value `m · 2^e` of the float, for the two cases where the shortest digits are not
/// what `to_chars` prints.
struct Exact {
    m: u128,
    e: i32,
    /// Above this many fractional bits a value has too many exact decimal digits to be a tie.
    max_frac_bits: i32,
}

impl Exact {
    /// The value's significant decimal digits when there are at most 20 of them (only such values
    /// can lie exactly halfway between two shortest candidates).
    fn short_digits(&self) -> Option<([u8; 40], usize)> {
        if self.m == 0 {
            return None;
        }
        let tz = self.m.trailing_zeros() as i32;
        let (m, e) = (self.m >> tz, self.e + tz);
        if e < -self.max_frac_bits {
            return None;
        }
        // m · 2^-f = m · 5^f · 10^-f: the digits are those of m · 5^f
        let n = if e >= 0 {
            m.checked_mul(1u128.checked_shl(e as u32)?)?
        } else {
            m.checked_mul(5u128.checked_pow((-e) as u32)?)?
        };
        let mut digits = [0u8; 40];
        let len = write_u128(&mut digits, n);
        let len = digits[..len]
            .iter()
            .rposition(|&d| d != b'0')
            .map_or(0, |p| p + 1);
        (len <= 20).then_some((digits, len))
    }

    /// The value as an integer, when it is one below 2^128.
    fn integer(&self) -> Option<u128> {
        if self.e >= 0 {
            self.m.checked_mul(1u128.checked_shl(self.e as u32)?)
        } else {
            let shift = (-self.e) as u32;
            (shift < 128 && self.m.trailing_zeros() >= shift).then(|| self.m >> shift)
        }
    }
}

/// Writes `n` in decimal at the start of `buf`, returning the length.
fn write_u128(buf: &mut [u8; 40], mut n: u128) -> usize {
    let mut tmp = [0u8; 40];
    let mut k = 0;
    loop {
        tmp[k] = b'0' + (n % 10) as u8;
        n /= 10;
        k += 1;
        if n == 0 {
            break;
        }
    }
    for i in 0..k {
        buf[i] = tmp[k - 1 - i];
    }
    k
}

/// Turns ryu's shortest text (`-1.2345e-7`, `0.001`, `123.0`, `1e20`) into `to_chars`' spelling.
fn write_shortest(out: &mut String, ryu_text: &str, exact: Exact) {
    let s = ryu_text.as_bytes();
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (mant, e10) = match s.iter().position(|&b| b == b'e') {
        Some(p) => (
            &s[..p],
            std::str::from_utf8(&s[p + 1..])
                .ok()
                .and_then(|x| x.parse::<i32>().ok())
                .unwrap_or(0),
        ),
        None => (s, 0),
    };
    // all mantissa digits, and how many stand before the point
    let mut all = [0u8; 48];
    let mut n_all = 0;
    let mut int_len = None;
    for &b in mant {
        if b == b'.' {
            int_len = Some(n_all);
        } else if n_all < all.len() {
            all[n_all] = b;
            n_all += 1;
        }
    }
    let int_len = int_len.unwrap_or(n_all) as i32;
    let lead = all[..n_all].iter().take_while(|&&d| d == b'0').count();
    if lead == n_all {
        out.push_str(if neg { "-0" } else { "0" });
        return;
    }
    let end = all[..n_all]
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |p| p + 1);
    let mut digits = [0u8; 48];
    let mut n = end - lead;
    digits[..n].copy_from_slice(&all[lead..end]);
    // decimal exponent of the first significant digit
    let exp = int_len - 1 - lead as i32 + e10;

    // A value exactly halfway between two shortest candidates: ryu and C++ break the tie
    // differently; C++ rounds half to even.
    if let Some((x, _)) = exact
        .short_digits()
        .filter(|(x, xl)| *xl == n + 1 && x[*xl - 1] == b'5')
    {
        let lower = &x[..n];
        if (lower[n - 1] - b'0').is_multiple_of(2) {
            digits[..n].copy_from_slice(lower);
        } else {
            let mut up = [0u8; 48];
            up[..n].copy_from_slice(lower);
            let mut k = n;
            let mut carry = true;
            while carry && k > 0 {
                k -= 1;
                if up[k] == b'9' {
                    up[k] = b'0';
                } else {
                    up[k] += 1;
                    carry = false;
                }
            }
            if !carry {
                digits[..n].copy_from_slice(&up[..n]);
            }
        }
        // both candidates start at the exact value's first digit, so the exponent stands
        while n > 1 && digits[n - 1] == b'0' {
            n -= 1;
        }
    }
    let digits = &digits[..n];
    let n = n as i32;

    let exp_digits = if exp.abs() >= 100 { 3 } else { 2 };
    let sci_len = n + i32::from(n > 1) + 2 + exp_digits;
    let fixed_len = if exp >= 0 {
        if exp + 1 >= n {
            exp + 1
        } else {
            n + 1
        }
    } else {
        n + 1 - exp
    };
    if neg {
        out.push('-');
    }
    let push = |out: &mut String, d: &[u8]| out.push_str(std::str::from_utf8(d).unwrap_or("0"));
    if sci_len < fixed_len {
        push(out, &digits[..1]);
        if n > 1 {
            out.push('.');
            push(out, &digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        if exp.abs() < 10 {
            out.push('0');
        }
        let mut b = [0u8; 40];
        let l = write_u128(&mut b, exp.unsigned_abs() as u128);
        push(out, &b[..l]);
    } else if exp >= 0 && exp + 1 > n {
        // an integer longer than its shortest digits: printf's %f writes its exact digits
        let mut b = [0u8; 40];
        let l = write_u128(&mut b, exact.integer().unwrap_or(0));
        push(out, &b[..l]);
    } else if exp >= 0 {
        let split = (exp + 1) as usize;
        push(out, &digits[..split]);
        if split < digits.len() {
            out.push('.');
            push(out, &digits[split..]);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        push(out, digits);
    }
}
