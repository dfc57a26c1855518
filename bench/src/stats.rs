//! Order statistics and a two-sample test, for latencies measured one request at a time.

/// The value at quantile `q` (0 to 1) of `sorted`, nearest rank; NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// `samples` sorted, for [`quantile`].
pub fn sorted(mut samples: Vec<f64>) -> Vec<f64> {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples
}

/// Mann-Whitney U of two samples, as a z score (normal approximation, ties averaged):
/// |z| < 1.96 means no evidence at the 5 % level that one side is slower.
pub fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a.iter().map(|x| (*x, true)).chain(b.iter().map(|x| (*x, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += all[i..=j].iter().filter(|x| x.1).count() as f64 * rank;
        i = j + 1;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    (u - n1 * n2 / 2.0) / (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_sample_shows_no_difference_and_a_shifted_one_does() {
        let a: Vec<f64> = (0..200).map(f64::from).collect();
        assert!(mann_whitney_z(&a, &a).abs() < 0.01);
        let shifted: Vec<f64> = a.iter().map(|x| x + 100.0).collect();
        assert!(mann_whitney_z(&a, &shifted) < -5.0, "a is faster");
        assert!(mann_whitney_z(&shifted, &a) > 5.0);
    }

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let s = sorted(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 0.5), 3.0);
        assert_eq!(quantile(&s, 1.0), 5.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
