//! Small statistics the classifier needs: summaries, R's type-7 quantiles, the IQR outlier
//! fences, the common-language effect size, and a seeded normal random source.

/// What the report shows of one side, after NaN and outlier handling.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n - 1).
    pub std: f64,
}

pub fn summary(values: &[f64]) -> Summary {
    if values.is_empty() {
        return Summary {
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            median: f64::NAN,
            std: f64::NAN,
            ..Summary::default()
        };
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = if values.len() > 1 {
        values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Summary {
        count: values.len(),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        mean,
        median: quantile_sorted(&sorted, 0.5),
        std: variance.sqrt(),
    }
}

/// R's `quantile(type = 7)` of sorted, non-empty values.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let low = h.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    sorted[low] + (h - low as f64) * (sorted[high] - sorted[low])
}

/// Kayenta's `IQRDetector(factor, reduceSensitivity = true)`: drop points beyond
/// `min(P1, Q1 - f·IQR)` and `max(P99, Q3 + f·IQR)`, so that at most the extreme percent on
/// each side goes.
pub fn remove_outliers(values: &[f64], factor: f64) -> Vec<f64> {
    if values.len() < 2 {
        return values.to_vec();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q1 = quantile_sorted(&sorted, 0.25);
    let q3 = quantile_sorted(&sorted, 0.75);
    let iqr = q3 - q1;
    let lower = quantile_sorted(&sorted, 0.01).min(q1 - factor * iqr);
    let upper = quantile_sorted(&sorted, 0.99).max(q3 + factor * iqr);
    values
        .iter()
        .copied()
        .filter(|v| *v >= lower && *v <= upper)
        .collect()
}

/// Vargha-Delaney A: the probability that a canary point exceeds a baseline point (ties count
/// half). 0.5 means no difference.
pub fn cles(x: &[f64], y: &[f64]) -> f64 {
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    // For each x: the ys below it, plus half the ys equal to it.
    let (mut below, mut below_or_equal) = (0usize, 0usize);
    let mut wins = 0.0;
    for v in &xs {
        while below < ys.len() && ys[below] < *v {
            below += 1;
        }
        while below_or_equal < ys.len() && ys[below_or_equal] <= *v {
            below_or_equal += 1;
        }
        wins += below as f64 + (below_or_equal - below) as f64 / 2.0;
    }
    wins / (xs.len() as f64 * ys.len() as f64)
}

/// A seeded random source (SplitMix64), so the same inputs always give the same verdict
/// (Kayenta's noise was unseeded).
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_r_type_7() {
        // R: quantile(c(1, 2, 3, 4, 10), c(.01, .25, .5, .75, .99))
        //    1.04 2.00 3.00 4.00 9.76
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        let got: Vec<f64> = [0.01, 0.25, 0.5, 0.75, 0.99]
            .iter()
            .map(|p| quantile_sorted(&v, *p))
            .collect();
        for (g, w) in got.iter().zip([1.04, 2.0, 3.0, 4.0, 9.76]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn outliers_beyond_the_fences_go() {
        let mut v: Vec<f64> = (0..100).map(|i| 10.0 + (i % 7) as f64 * 0.1).collect();
        v.push(1000.0);
        let kept = remove_outliers(&v, 3.0);
        assert_eq!(kept.len(), 100);
        assert!(!kept.contains(&1000.0));
    }

    #[test]
    fn cles_counts_ties_half() {
        assert_eq!(cles(&[1.0, 2.0], &[1.0, 2.0]), 0.5);
        assert_eq!(cles(&[3.0], &[1.0, 2.0]), 1.0);
        assert_eq!(cles(&[0.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn the_random_source_is_seeded() {
        let a: Vec<f64> = (0..3)
            .scan(Random::new(7), |r, _| Some(r.normal()))
            .collect();
        let b: Vec<f64> = (0..3)
            .scan(Random::new(7), |r, _| Some(r.normal()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }
}
