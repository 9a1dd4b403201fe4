//! Least-squares line fits: one fit for the depth laws of the SNR figures and the memory
//! scaling (bytes per block or pixel).

/// A least-squares line `y = slope x + intercept` and its coefficient of determination
/// `r2 = 1 - SSE / SYY` (1 when every `y` is the same).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Coefficient of determination.
    pub r2: f64,
}

/// Least-squares fit of `y` on `x` over the pairs with both coordinates finite: means `mx`,
/// `my`, `slope = sum (x - mx)(y - my) / sum (x - mx)^2`, `intercept = my - slope mx` (sums in
/// order, f64). `None` with fewer than two such pairs or when all their `x` are equal.
pub fn fit_line(pts: &[(f64, f64)]) -> Option<LineFit> {
    let p: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if p.len() < 2 {
        return None;
    }
    let n = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|v| v.0).sum::<f64>() / n,
        p.iter().map(|v| v.1).sum::<f64>() / n,
    );
    let sxx: f64 = p.iter().map(|v| (v.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = p.iter().map(|v| (v.0 - mx) * (v.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let syy: f64 = p.iter().map(|v| (v.1 - my).powi(2)).sum();
    let sse: f64 = p
        .iter()
        .map(|v| (v.1 - slope * v.0 - intercept).powi(2))
        .sum();
    let r2 = if syy == 0.0 { 1.0 } else { 1.0 - sse / syy };
    Some(LineFit {
        slope,
        intercept,
        r2,
    })
}

/// [`fit_line`] of `ys` on `xs` (pairs up to the shorter length).
pub fn fit_xy(xs: &[f64], ys: &[f64]) -> Option<LineFit> {
    let pts: Vec<(f64, f64)> = xs.iter().copied().zip(ys.iter().copied()).collect();
    fit_line(&pts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exact line is recovered (r2 = 1); non-finite pairs are left out; fewer than two
    /// distinct x is no fit.
    #[test]
    fn exact_lines_and_degenerate_inputs() {
        let f = fit_line(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, f64::INFINITY)]).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 1.0).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        let f = fit_xy(&[2.0, 4.0, 8.0, 16.0], &[5.0, 9.0, 17.0, 33.0]).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 1.0).abs() < 1e-12);
        // y = (0, 1, 0): slope 0, r2 = 0.
        let f = fit_xy(&[0.0, 1.0, 2.0], &[0.0, 1.0, 0.0]).unwrap();
        assert!(f.slope.abs() < 1e-15 && f.r2.abs() < 1e-15, "{f:?}");
        assert!(fit_xy(&[3.0, 3.0], &[1.0, 2.0]).is_none());
        assert!(fit_xy(&[1.0], &[1.0]).is_none());
        assert!(fit_line(&[(0.0, 1.0), (f64::NAN, 2.0)]).is_none());
    }
}
