//! Proleptic Gregorian calendar arithmetic (Howard Hinnant's `days_from_civil` and
//! `civil_from_days`), the one copy every part of the crate uses: reading and printing
//! datetimes here, calendar features in the engine, and the ONNX graph that computes those
//! features at prediction time.
//!
//! `civil_from_days` is written once over [`FloorArithmetic`], with floors only and no
//! branches: run on [`F64`] it computes the date natively; run on graph values (the ONNX
//! export implements the trait) it emits the same operations in the same order, so the model
//! file and native code compute the same parts.

/// The operations `civil_from_days` needs, on whatever holds the numbers.
pub trait FloorArithmetic {
    type Value: Clone;
    fn add(&mut self, a: &Self::Value, b: &Self::Value) -> Self::Value;
    fn sub(&mut self, a: &Self::Value, b: &Self::Value) -> Self::Value;
    /// `a + c`.
    fn add_constant(&mut self, a: &Self::Value, c: f64) -> Self::Value;
    /// `c · a`.
    fn times_constant(&mut self, a: &Self::Value, c: f64) -> Self::Value;
    /// `floor(a / c)`.
    fn floor_div(&mut self, a: &Self::Value, c: f64) -> Self::Value;

    /// `a - c·floor(a / c)`: the remainder that is never negative for `c > 0`.
    fn floor_mod(&mut self, a: &Self::Value, c: f64) -> Self::Value {
        let q = self.floor_div(a, c);
        let m = self.times_constant(&q, c);
        self.sub(a, &m)
    }
}

/// Plain `f64` arithmetic. Every value the calendar computes from whole days is an integer far
/// below 2^53, so each step is exact.
#[derive(Debug, Clone, Copy, Default)]
pub struct F64;

impl FloorArithmetic for F64 {
    type Value = f64;
    fn add(&mut self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn sub(&mut self, a: &f64, b: &f64) -> f64 {
        a - b
    }
    fn add_constant(&mut self, a: &f64, c: f64) -> f64 {
        a + c
    }
    fn times_constant(&mut self, a: &f64, c: f64) -> f64 {
        c * a
    }
    fn floor_div(&mut self, a: &f64, c: f64) -> f64 {
        (a / c).floor()
    }
}

/// `(year, month 1–12, day 1–31)` of `days` since 1970-01-01.
pub fn civil_from_days<A: FloorArithmetic>(
    a: &mut A,
    days: &A::Value,
) -> (A::Value, A::Value, A::Value) {
    let z = a.add_constant(days, 719_468.0);
    let era = a.floor_div(&z, 146_097.0);
    let era_days = a.times_constant(&era, 146_097.0);
    let doe = a.sub(&z, &era_days);
    // yoe = floor((doe - floor(doe/1460) + floor(doe/36524) - floor(doe/146096)) / 365)
    let leap_4 = a.floor_div(&doe, 1460.0);
    let leap_100 = a.floor_div(&doe, 36_524.0);
    let leap_400 = a.floor_div(&doe, 146_096.0);
    let t = a.sub(&doe, &leap_4);
    let t = a.add(&t, &leap_100);
    let t = a.sub(&t, &leap_400);
    let yoe = a.floor_div(&t, 365.0);
    // doy = doe - (365·yoe + floor(yoe/4) - floor(yoe/100))
    let y365 = a.times_constant(&yoe, 365.0);
    let y4 = a.floor_div(&yoe, 4.0);
    let y100 = a.floor_div(&yoe, 100.0);
    let s = a.add(&y365, &y4);
    let s = a.sub(&s, &y100);
    let doy = a.sub(&doe, &s);
    // mp = floor((5·doy + 2) / 153) counts months from March
    let t = a.times_constant(&doy, 5.0);
    let t = a.add_constant(&t, 2.0);
    let mp = a.floor_div(&t, 153.0);
    // day = doy - floor((153·mp + 2) / 5) + 1
    let t = a.times_constant(&mp, 153.0);
    let t = a.add_constant(&t, 2.0);
    let t = a.floor_div(&t, 5.0);
    let t = a.sub(&doy, &t);
    let day = a.add_constant(&t, 1.0);
    // mp ≥ 10 (January, February) belongs to the next year: wraps = floor(mp / 10);
    // month = mp + 3 - 12·wraps; year = yoe + 400·era + wraps
    let wraps = a.floor_div(&mp, 10.0);
    let t = a.add_constant(&mp, 3.0);
    let w12 = a.times_constant(&wraps, 12.0);
    let month = a.sub(&t, &w12);
    let e400 = a.times_constant(&era, 400.0);
    let t = a.add(&yoe, &e400);
    let year = a.add(&t, &wraps);
    (year, month, day)
}

/// Days since 1970-01-01 of a date (`month` 1–12).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_from_days_inverts_days_from_civil_over_four_centuries() {
        for days in (-150_000i64..150_000).step_by(7) {
            let (y, m, d) = civil_from_days(&mut F64, &(days as f64));
            assert!(
                (1.0..=12.0).contains(&m) && (1.0..=31.0).contains(&d),
                "{days}: {y}-{m}-{d}"
            );
            assert_eq!(
                days_from_civil(y as i64, m as i64, d as i64),
                days,
                "{y}-{m}-{d}"
            );
        }
        assert_eq!(civil_from_days(&mut F64, &0.0), (1970.0, 1.0, 1.0));
        assert_eq!(civil_from_days(&mut F64, &-1.0), (1969.0, 12.0, 31.0));
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn floor_mod_is_never_negative() {
        assert_eq!(F64.floor_mod(&-1.0, 7.0), 6.0);
        assert_eq!(F64.floor_mod(&15.0, 7.0), 1.0);
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(is_leap(2024) && is_leap(2000) && !is_leap(1900) && !is_leap(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2023, 4), 30);
    }
}
