//! Kubernetes resource quantities (`500m`, `1.5`, `512Mi`, `128M`, `1e3`) into the scheduler's
//! integer units, with exact integer arithmetic and an explicit rounding direction: requests
//! round up (never under-reserve), capacities round down (never over-promise).

/// The scheduler unit a quantity is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Thousandths of a core (`cpu`).
    Milli,
    /// MiB (`memory`, `ephemeral-storage`; Titus's MB are MiB).
    Mebibyte,
    /// Megabits per second (`titus/network`, given in bits per second: `128M`).
    Megabit,
    /// Plain counts (`nvidia.com/gpu`, `pods`).
    Count,
}

impl Unit {
    /// (multiplier, divisor) taking a value in base units to this unit.
    fn scale(self) -> (u128, u128) {
        match self {
            Unit::Milli => (1000, 1),
            Unit::Mebibyte => (1, 1 << 20),
            Unit::Megabit => (1, 1_000_000),
            Unit::Count => (1, 1),
        }
    }
}

/// Which way a fractional result goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Towards +∞ (requests).
    Up,
    /// Towards 0 (capacities).
    Down,
}

/// A quantity that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {quantity:?}")]
pub struct QuantityError {
    /// The text.
    pub quantity: String,
}

/// Parses `text` and converts it to `unit`, rounding as asked.
///
/// # Errors
/// [`QuantityError`] for malformed, negative or out-of-range quantities.
pub fn parse(text: &str, unit: Unit, rounding: Rounding) -> Result<u64, QuantityError> {
    let error = || QuantityError {
        quantity: text.to_string(),
    };
    let trimmed = text.trim();
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || int_part.len() + frac_part.len() > 30 {
        return Err(error());
    }
    let digits: u128 = format!("{int_part}{frac_part}")
        .parse()
        .map_err(|_| error())?;
    let (binary_exp, decimal_exp) = suffix_exponents(suffix).ok_or_else(error)?;
    let frac_digits = i32::try_from(frac_part.len()).map_err(|_| error())?;
    let decimal_exp = decimal_exp - frac_digits;
    let (mul, div) = unit.scale();
    let mut numerator = digits
        .checked_mul(mul)
        .and_then(|n| n.checked_mul(1u128.checked_shl(binary_exp)?))
        .ok_or_else(error)?;
    let mut denominator = div;
    if decimal_exp >= 0 {
        numerator = numerator
            .checked_mul(
                10u128
                    .checked_pow(decimal_exp.unsigned_abs())
                    .ok_or_else(error)?,
            )
            .ok_or_else(error)?;
    } else {
        denominator = denominator
            .checked_mul(
                10u128
                    .checked_pow(decimal_exp.unsigned_abs())
                    .ok_or_else(error)?,
            )
            .ok_or_else(error)?;
    }
    let quotient = numerator / denominator;
    let value = match rounding {
        Rounding::Up if numerator % denominator != 0 => quotient + 1,
        Rounding::Up | Rounding::Down => quotient,
    };
    u64::try_from(value).map_err(|_| error())
}

/// (power of two, power of ten) of a suffix; `None` when unknown.
fn suffix_exponents(suffix: &str) -> Option<(u32, i32)> {
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(exp) = binary {
        return Some((exp, 0));
    }
    let decimal = match suffix {
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            let exp: i32 = exp.parse().ok()?;
            if exp.abs() > 30 {
                return None;
            }
            exp
        }
    };
    Some((0, decimal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_convert_to_scheduler_units_with_the_requested_rounding() {
        use Rounding::{Down, Up};
        use Unit::{Count, Mebibyte, Megabit, Milli};
        let cases: &[(&str, Unit, Rounding, Option<u64>)] = &[
            ("2", Milli, Up, Some(2000)),
            ("1.5", Milli, Up, Some(1500)),
            ("500m", Milli, Up, Some(500)),
            ("0.0005", Milli, Up, Some(1)),
            ("0.0005", Milli, Down, Some(0)),
            ("100n", Milli, Up, Some(1)),
            ("512Mi", Mebibyte, Up, Some(512)),
            ("1Gi", Mebibyte, Down, Some(1024)),
            ("1G", Mebibyte, Down, Some(953)),
            ("1G", Mebibyte, Up, Some(954)),
            ("10000Mi", Mebibyte, Up, Some(10000)),
            ("16329236Ki", Mebibyte, Down, Some(15946)),
            ("128M", Megabit, Up, Some(128)),
            ("1e3", Count, Up, Some(1000)),
            ("1.5E2", Count, Down, Some(150)),
            ("110", Count, Down, Some(110)),
            ("+4", Count, Down, Some(4)),
            ("", Count, Down, None),
            ("-1", Count, Down, None),
            ("1Xi", Count, Down, None),
            ("abc", Count, Down, None),
            ("1.2.3", Count, Down, None),
            ("99999999999Ei", Count, Down, None),
        ];
        for (text, unit, rounding, want) in cases {
            assert_eq!(
                parse(text, *unit, *rounding).ok(),
                *want,
                "{text} as {unit:?} rounded {rounding:?}"
            );
        }
    }
}
