//! Optional whole-number request fields that take `84` and `84.0` alike. JSON has one number
//! type and JSON Schema's `integer` admits `84.0`, so clients that write every number as a
//! float (JavaScript after arithmetic, some generated clients) must not get a 422 for it; a
//! fraction, a negative or an out-of-range number still does.

use serde::Deserialize;
use serde::de::{Deserializer, Error};

/// Reads an optional whole number that fits `T`, from an integer or an integral float.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    let whole = whole.ok_or_else(|| {
        D::Error::custom(format!("invalid value: {number}, expected a whole number"))
    })?;
    T::try_from(whole)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("invalid value: {number}, out of range")))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::optional")]
        n: Option<u32>,
    }

    fn read(json: &str) -> Result<Option<u32>, serde_json::Error> {
        serde_json::from_str::<Body>(json).map(|b| b.n)
    }

    #[test]
    fn integral_floats_read_as_whole_numbers_and_fractions_do_not() {
        assert_eq!(read(r#"{"n": 84}"#).unwrap(), Some(84));
        assert_eq!(read(r#"{"n": 84.0}"#).unwrap(), Some(84));
        assert_eq!(read(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert!(read(r#"{"n": 84.5}"#).is_err());
        assert!(read(r#"{"n": -1}"#).is_err());
        assert!(read(r#"{"n": 5000000000}"#).is_err());
        assert!(read(r#"{"n": "84"}"#).is_err());
    }
}
