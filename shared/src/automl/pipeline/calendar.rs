//! Calendar parts of a datetime input (epoch seconds, UTC), written once over
//! [`FloorArithmetic`]: native code runs it on `f64`, the ONNX export on graph values, so the
//! file computes each part with the very operations native code uses.

use super::DatetimePart;
use crate::ingest::calendar::{F64, FloorArithmetic, civil_from_days};

/// The parts of one datetime value, sharing what they have in common (whole days, the civil
/// date) between the parts asked for.
pub struct Calendar<V> {
    seconds: V,
    days: V,
    civil: Option<(V, V, V)>,
}

impl<V: Clone> Calendar<V> {
    pub fn new<A: FloorArithmetic<Value = V>>(a: &mut A, seconds: V) -> Self {
        let days = a.floor_div(&seconds, 86_400.0);
        Calendar {
            seconds,
            days,
            civil: None,
        }
    }

    /// Day of week is 0 = Monday … 6 = Sunday.
    pub fn part<A: FloorArithmetic<Value = V>>(&mut self, a: &mut A, part: DatetimePart) -> V {
        match part {
            DatetimePart::Hour => {
                let day_start = a.times_constant(&self.days, 86_400.0);
                let in_day = a.sub(&self.seconds, &day_start);
                a.floor_div(&in_day, 3600.0)
            }
            DatetimePart::DayOfWeek => {
                // 1970-01-01 was a Thursday (3 with Monday = 0).
                let shifted = a.add_constant(&self.days, 3.0);
                a.floor_mod(&shifted, 7.0)
            }
            DatetimePart::Year | DatetimePart::Month | DatetimePart::Day => {
                let days = &self.days;
                let (year, month, day) = self.civil.get_or_insert_with(|| civil_from_days(a, days));
                match part {
                    DatetimePart::Year => year.clone(),
                    DatetimePart::Month => month.clone(),
                    _ => day.clone(),
                }
            }
        }
    }
}

/// One calendar part of `seconds` (epoch seconds UTC), in `f64`. Every step is exact for whole
/// seconds below 2^53 in magnitude; NaN gives NaN.
pub fn datetime_part(seconds: f64, part: DatetimePart) -> f64 {
    Calendar::new(&mut F64, seconds).part(&mut F64, part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_known_instants() {
        // 2024-02-29T13:00:48Z, a Thursday.
        let s = 1_709_211_648.0;
        assert_eq!(datetime_part(s, DatetimePart::Year), 2024.0);
        assert_eq!(datetime_part(s, DatetimePart::Month), 2.0);
        assert_eq!(datetime_part(s, DatetimePart::Day), 29.0);
        assert_eq!(datetime_part(s, DatetimePart::Hour), 13.0);
        assert_eq!(datetime_part(s, DatetimePart::DayOfWeek), 3.0);
        // 1969-12-31T23:00:00Z, a Wednesday: negative epochs floor correctly.
        let s = -3600.0;
        assert_eq!(datetime_part(s, DatetimePart::Year), 1969.0);
        assert_eq!(datetime_part(s, DatetimePart::Month), 12.0);
        assert_eq!(datetime_part(s, DatetimePart::Day), 31.0);
        assert_eq!(datetime_part(s, DatetimePart::Hour), 23.0);
        assert_eq!(datetime_part(s, DatetimePart::DayOfWeek), 2.0);
        assert!(datetime_part(f64::NAN, DatetimePart::Year).is_nan());
    }
}
