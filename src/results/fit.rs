//! Least-squares line fits.

/// Least-squares slope and intercept of `y` on `x` over finite pairs (None with < 2).
pub fn fit_line(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
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
    Some((slope, my - slope * mx))
}
