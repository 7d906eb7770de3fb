//! The two-sample Mann-Whitney (Wilcoxon rank-sum) test with the Hodges-Lehmann shift estimate
//! and its confidence interval, computed exactly as R's
//! `wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)` does (normal
//! approximation with tie and continuity corrections, roots found by R's `zeroin`).
//!
//! Kayenta ports the same R code; two of its differences are fixed here: the estimate is found
//! without the continuity correction (R sets `correct <- FALSE` before `uniroot(W, ...)`), and a
//! zero variance is an error value, not an exception.
//!
//! `runner/crates/judge/tests/data/golden.R` produces the golden values the tests compare against.

use statrs::distribution::{ContinuousCDF, Normal};

/// R's `wilcox.test` tolerance for its roots (`tol.root = 1e-4`).
const ROOT_TOLERANCE: f64 = 1e-4;
/// `uniroot`'s default `maxiter`.
const MAX_ITERATIONS: u32 = 1000;

/// What the test says about `x - y` (x: canary, y: baseline).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    /// Lower bound of the confidence interval of the shift.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Hodges-Lehmann estimate of the shift ("difference in location").
    pub estimate: f64,
    /// R's `W` statistic: the rank sum of `x` minus `nx(nx+1)/2`.
    pub statistic: f64,
    /// Two-sided p-value (normal approximation, corrected for ties and continuity).
    pub p_value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MannWhitneyError {
    #[error("a sample is empty")]
    Empty,
    #[error("a sample holds a NaN or infinite value")]
    NotFinite,
    #[error("all observations are tied, so the rank statistic has no variance")]
    AllTied,
    #[error("the samples do not span a range of shifts to search")]
    NoRange,
}

/// The test at `confidence` (e.g. 0.98).
pub fn mann_whitney(
    x: &[f64],
    y: &[f64],
    confidence: f64,
) -> Result<MannWhitney, MannWhitneyError> {
    if x.is_empty() || y.is_empty() {
        return Err(MannWhitneyError::Empty);
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(MannWhitneyError::NotFinite);
    }
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    let ranks = RankSum { x: &xs, y: &ys };

    let nx = xs.len() as f64;
    let (rank_sum, _) = ranks.at(0.0);
    let statistic = rank_sum - nx * (nx + 1.0) / 2.0;
    let w0 = ranks.w(0.0, true)?;
    let normal = Normal::standard();
    let p_value = 2.0 * normal.cdf(w0).min(normal.cdf(-w0));

    let mu_min = xs[0] - ys[ys.len() - 1];
    let mu_max = xs[xs.len() - 1] - ys[0];
    let alpha = 1.0 - confidence;
    let w_min = ranks.w(mu_min, true)?;
    let w_max = ranks.w(mu_max, true)?;
    let root = |zq: f64| -> Result<f64, MannWhitneyError> {
        let f_lower = w_min - zq;
        if f_lower <= 0.0 {
            return Ok(mu_min);
        }
        let f_upper = w_max - zq;
        if f_upper >= 0.0 {
            return Ok(mu_max);
        }
        zeroin(mu_min, mu_max, f_lower, f_upper, |d| {
            ranks.w(d, true).map(|w| w - zq)
        })
    };
    // qnorm(alpha/2, lower.tail = FALSE) for the lower bound, qnorm(alpha/2) for the upper.
    let z = normal.inverse_cdf(alpha / 2.0);
    let lower = root(-z)?;
    let upper = root(z)?;

    // uniroot(W, mumin, mumax) with correct = FALSE, no short-cut at the ends.
    if mu_min >= mu_max {
        return Err(MannWhitneyError::NoRange);
    }
    let f_lower = ranks.w(mu_min, false)?;
    let f_upper = ranks.w(mu_max, false)?;
    if f_lower * f_upper > 0.0 {
        return Err(MannWhitneyError::NoRange);
    }
    let estimate = zeroin(mu_min, mu_max, f_lower, f_upper, |d| ranks.w(d, false))?;
    Ok(MannWhitney {
        lower,
        upper,
        estimate,
        statistic,
        p_value,
    })
}

/// Ranks of `c(x - d, y)` for sorted `x` and `y`, merged in linear time.
struct RankSum<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

impl RankSum<'_> {
    /// The rank sum of `x - d` (average ranks for ties) and `Σ (t³ - t)` over tie groups.
    fn at(&self, d: f64) -> (f64, f64) {
        let (x, y) = (self.x, self.y);
        let (mut i, mut j) = (0usize, 0usize);
        let mut position = 0usize;
        let mut rank_sum = 0.0;
        let mut ties = 0.0;
        while i < x.len() || j < y.len() {
            let next = match (x.get(i), y.get(j)) {
                (Some(a), Some(b)) => (a - d).min(*b),
                (Some(a), None) => a - d,
                (None, Some(b)) => *b,
                (None, None) => break,
            };
            let (mut in_x, mut in_y) = (0usize, 0usize);
            while i < x.len() && x[i] - d == next {
                in_x += 1;
                i += 1;
            }
            while j < y.len() && y[j] == next {
                in_y += 1;
                j += 1;
            }
            let t = in_x + in_y;
            // Ranks position+1 ..= position+t, averaged.
            let average = position as f64 + (t as f64 + 1.0) / 2.0;
            rank_sum += in_x as f64 * average;
            let t = t as f64;
            ties += t * t * t - t;
            position += in_x + in_y;
        }
        (rank_sum, ties)
    }

    /// R's `W(d)`: the standardised rank statistic of `x - d` against `y`.
    fn w(&self, d: f64, correct: bool) -> Result<f64, MannWhitneyError> {
        let nx = self.x.len() as f64;
        let ny = self.y.len() as f64;
        let (rank_sum, ties) = self.at(d);
        let dz = rank_sum - nx * (nx + 1.0) / 2.0 - nx * ny / 2.0;
        let correction = if correct {
            dz.signum_or_zero() * 0.5
        } else {
            0.0
        };
        let sigma =
            ((nx * ny / 12.0) * ((nx + ny + 1.0) - ties / ((nx + ny) * (nx + ny - 1.0)))).sqrt();
        if sigma == 0.0 || sigma.is_nan() {
            return Err(MannWhitneyError::AllTied);
        }
        Ok((dz - correction) / sigma)
    }
}

trait SignumOrZero {
    fn signum_or_zero(self) -> f64;
}

impl SignumOrZero for f64 {
    /// R's `sign`: 0 for 0 (Rust's `signum` answers 1).
    fn signum_or_zero(self) -> f64 {
        if self == 0.0 { 0.0 } else { self.signum() }
    }
}

/// R's `R_zeroin2` (Brent's root finder as `uniroot` calls it, with the values at the ends
/// already known). Ported step for step: matching R to 1e-6 needs the same iterates, since
/// the tolerance (1e-4) is far coarser than that.
fn zeroin(
    ax: f64,
    bx: f64,
    fa: f64,
    fb: f64,
    mut f: impl FnMut(f64) -> Result<f64, MannWhitneyError>,
) -> Result<f64, MannWhitneyError> {
    let (mut a, mut b, mut fa, mut fb) = (ax, bx, fa, fb);
    let (mut c, mut fc) = (a, fa);
    if fa == 0.0 {
        return Ok(a);
    }
    if fb == 0.0 {
        return Ok(b);
    }
    for _ in 0..=MAX_ITERATIONS {
        let prev_step = b - a;
        if fc.abs() < fb.abs() {
            // b must be the best approximation.
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol_act = 2.0 * f64::EPSILON * b.abs() + ROOT_TOLERANCE / 2.0;
        let mut new_step = (c - b) / 2.0;
        if new_step.abs() <= tol_act || fb == 0.0 {
            return Ok(b);
        }
        if prev_step.abs() >= tol_act && fa.abs() > fb.abs() {
            let cb = c - b;
            let (mut p, mut q);
            if a == c {
                // Two distinct points: linear interpolation.
                let t1 = fb / fa;
                p = cb * t1;
                q = 1.0 - t1;
            } else {
                // Inverse quadratic interpolation.
                q = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0));
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < (0.75 * cb * q - (tol_act * q).abs() / 2.0) && p < (prev_step * q / 2.0).abs() {
                new_step = p / q;
            }
        }
        if new_step.abs() < tol_act {
            new_step = if new_step > 0.0 { tol_act } else { -tol_act };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = f(b)?;
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    // R warns "_NOT_ converged" and returns the last iterate.
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers are strings, parsed exactly (see `golden.R`).
    #[derive(serde::Deserialize)]
    struct Golden {
        name: String,
        #[serde(deserialize_with = "number")]
        conf: f64,
        #[serde(deserialize_with = "numbers")]
        x: Vec<f64>,
        #[serde(deserialize_with = "numbers")]
        y: Vec<f64>,
        #[serde(deserialize_with = "number")]
        lower: f64,
        #[serde(deserialize_with = "number")]
        upper: f64,
        #[serde(deserialize_with = "number")]
        estimate: f64,
        #[serde(deserialize_with = "number")]
        statistic: f64,
        #[serde(deserialize_with = "number")]
        p_value: f64,
    }

    fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }

    fn numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let texts = <Vec<String> as serde::Deserialize>::deserialize(d)?;
        texts
            .iter()
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .collect()
    }

    /// Every case of `tests/data/golden.json` (written by R, see `golden.R`) agrees to 1e-6.
    #[test]
    fn confidence_intervals_match_r_wilcox_test() {
        let cases: Vec<Golden> =
            serde_json::from_str(include_str!("../tests/data/golden.json")).unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let got = mann_whitney(&case.x, &case.y, case.conf)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            for (what, got, want) in [
                ("lower", got.lower, case.lower),
                ("upper", got.upper, case.upper),
                ("estimate", got.estimate, case.estimate),
                ("statistic", got.statistic, case.statistic),
                ("p_value", got.p_value, case.p_value),
            ] {
                assert!(
                    (got - want).abs() <= 1e-6,
                    "{}: {what} is {got}, R says {want}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn ranks_average_ties() {
        let x = [1.0, 2.0, 2.0];
        let y = [2.0, 3.0];
        let ranks = RankSum { x: &x, y: &y };
        // Ranks: 1, then 2,2,2 -> 3 each, then 5. x holds 1 + 3 + 3.
        assert_eq!(ranks.at(0.0), (7.0, 24.0));
    }

    #[test]
    fn degenerate_samples_are_errors() {
        assert_eq!(
            mann_whitney(&[], &[1.0], 0.98),
            Err(MannWhitneyError::Empty)
        );
        assert_eq!(
            mann_whitney(&[1.0, 1.0], &[1.0, 1.0], 0.98),
            Err(MannWhitneyError::AllTied)
        );
        assert_eq!(
            mann_whitney(&[f64::NAN], &[1.0], 0.98),
            Err(MannWhitneyError::NotFinite)
        );
    }
}
