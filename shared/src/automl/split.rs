//! Seeded row splits: holdout and k folds, stratified by class for classification, drawn from
//! the engine's own generator so that splits are identical across platforms and upgrades.

use super::random::SplitMix64;

/// Groups positions `0..n` by class (`classes[i]`), or one group for regression (`None`).
fn strata(n: usize, classes: Option<&[usize]>) -> Vec<Vec<usize>> {
    match classes {
        None => vec![(0..n).collect()],
        Some(c) => {
            let k = c.iter().copied().max().map_or(0, |m| m + 1);
            let mut groups = vec![Vec::new(); k];
            for (i, &ci) in c.iter().enumerate() {
                groups[ci].push(i);
            }
            groups
        }
    }
}

/// Splits positions `0..n` into (train, holdout) with about `fraction` held out, per class.
/// Both sides are sorted so row order is preserved.
pub fn holdout_split(
    n: usize,
    classes: Option<&[usize]>,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut hold) = (Vec::new(), Vec::new());
    for mut group in strata(n, classes) {
        rng.shuffle(&mut group);
        // Round, but keep at least one row of a class on the training side.
        let mut k = (group.len() as f64 * fraction).round() as usize;
        if k >= group.len() {
            k = group.len().saturating_sub(1);
        }
        hold.extend_from_slice(&group[..k]);
        train.extend_from_slice(&group[k..]);
    }
    train.sort_unstable();
    hold.sort_unstable();
    (train, hold)
}

/// Assigns each position `0..n` to one of `k` folds, dealing each class round-robin after a
/// shuffle so every fold sees every class in proportion.
pub fn fold_assignment(n: usize, classes: Option<&[usize]>, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed.wrapping_add(1));
    let mut fold = vec![0; n];
    let mut next = 0;
    for mut group in strata(n, classes) {
        rng.shuffle(&mut group);
        for i in group {
            fold[i] = next % k;
            next += 1;
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_stratified_disjoint_and_seeded() {
        let classes: Vec<usize> = (0..100).map(|i| usize::from(i % 4 == 0)).collect();
        let (train, hold) = holdout_split(100, Some(&classes), 0.2, 7);
        assert_eq!(train.len() + hold.len(), 100);
        assert_eq!(hold.len(), 20);
        assert_eq!(hold.iter().filter(|&&i| classes[i] == 1).count(), 5);
        assert!(hold.iter().all(|i| !train.contains(i)));
        assert_eq!(
            holdout_split(100, Some(&classes), 0.2, 7),
            (train.clone(), hold.clone())
        );
        assert_ne!(holdout_split(100, Some(&classes), 0.2, 8).1, hold);
    }

    #[test]
    fn folds_balance_classes() {
        let classes: Vec<usize> = (0..50).map(|i| i % 2).collect();
        let folds = fold_assignment(50, Some(&classes), 5, 1);
        for f in 0..5 {
            let members: Vec<usize> = (0..50).filter(|&i| folds[i] == f).collect();
            assert_eq!(members.len(), 10);
            assert_eq!(members.iter().filter(|&&i| classes[i] == 1).count(), 5);
        }
    }
}
