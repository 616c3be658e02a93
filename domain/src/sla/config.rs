//! An [`SlaPolicy`] from configuration text, so operators set their own
//! targets without a build: `CRITICAL=1h/4h,HIGH=4h/1d` names, per priority,
//! the first-response and resolution targets, and optionally a third part,
//! how long before the targets the warning comes (`LOW=1d/5d/2h`). Priorities
//! not named keep the default targets. A priority without its own warning
//! time is warned about when a given percentage of its first-response target
//! remains (25 by default, as in [`SlaPolicy::default`]).
//!
//! Durations are a whole number and a unit: `45s`, `30m`, `4h`, `3d`.
//! Anything else is an [`SlaConfigError`] naming the offending part, so a
//! server refuses to start on a typo rather than run with a policy nobody
//! meant.

use std::str::FromStr;

use chrono::Duration;

use super::{SlaPolicy, SlaTargets};
use crate::ticket::TicketPriority;

/// The warning percentage of [`SlaPolicy::default`].
pub const DEFAULT_WARNING_PERCENT: u8 = 25;

/// The longest duration accepted: far beyond any real target, and short
/// enough that due dates computed from it stay within the calendar.
pub const LONGEST: Duration = Duration::days(3650);

/// Why configuration text is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaConfigError {
    #[error("'{entry}' is not PRIORITY=FIRST_RESPONSE/RESOLUTION[/WARNING_BEFORE] (e.g. CRITICAL=1h/4h)")]
    Malformed { entry: String },
    #[error("unknown priority '{0}' (use LOW, MEDIUM, HIGH or CRITICAL)")]
    UnknownPriority(String),
    #[error("{0} is configured twice")]
    Repeated(&'static str),
    #[error("'{0}' is not a duration such as 45s, 30m, 4h or 3d")]
    BadDuration(String),
    #[error("'{0}' is longer than the longest duration accepted (3650d)")]
    TooLong(String),
    #[error("the {what} target of {priority} must be longer than zero")]
    NotPositive {
        priority: &'static str,
        what: &'static str,
    },
    #[error("the SLA warning percentage must be between 0 and 100, not {0}")]
    WarningPercent(u8),
}

/// Targets configured for some priorities, as parsed from
/// `PRIORITY=FIRST/RESOLUTION[/WARNING],...` (empty text: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaTargetOverrides(Vec<(TicketPriority, ConfiguredTargets)>);

/// One priority's configured targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfiguredTargets {
    pub first_response: Duration,
    pub resolution: Duration,
    /// `None`: from the warning percentage.
    pub warning_before: Option<Duration>,
}

impl FromStr for SlaTargetOverrides {
    type Err = SlaConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut overrides: Vec<(TicketPriority, ConfiguredTargets)> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = || SlaConfigError::Malformed {
                entry: entry.to_string(),
            };
            let (name, durations) = entry.split_once('=').ok_or_else(malformed)?;
            let priority = priority(name.trim())?;
            if overrides.iter().any(|(p, _)| *p == priority) {
                return Err(SlaConfigError::Repeated(priority.as_str()));
            }
            let parts: Vec<&str> = durations.split('/').map(str::trim).collect();
            let (first, resolution, warning) = match parts.as_slice() {
                [first, resolution] => (*first, *resolution, None),
                [first, resolution, warning] => (*first, *resolution, Some(*warning)),
                _ => return Err(malformed()),
            };
            let positive = |text: &str, what: &'static str| {
                let duration = parse_duration(text)?;
                if duration <= Duration::zero() {
                    return Err(SlaConfigError::NotPositive {
                        priority: priority.as_str(),
                        what,
                    });
                }
                Ok(duration)
            };
            let targets = ConfiguredTargets {
                first_response: positive(first, "first-response")?,
                resolution: positive(resolution, "resolution")?,
                warning_before: warning.map(parse_duration).transpose()?,
            };
            overrides.push((priority, targets));
        }
        Ok(SlaTargetOverrides(overrides))
    }
}

impl SlaPolicy {
    /// The default policy with `overrides` applied, each priority without
    /// its own warning time warned about when `warning_percent` of its
    /// first-response target remains (0: no warnings).
    pub fn configured(
        overrides: &SlaTargetOverrides,
        warning_percent: u8,
    ) -> Result<SlaPolicy, SlaConfigError> {
        if warning_percent > 100 {
            return Err(SlaConfigError::WarningPercent(warning_percent));
        }
        let defaults = SlaPolicy::default();
        let targets = |priority: TicketPriority| {
            let (first_response, resolution, warning_before) =
                match overrides.0.iter().find(|(p, _)| *p == priority) {
                    Some((_, c)) => (c.first_response, c.resolution, c.warning_before),
                    None => {
                        let d = defaults.targets(priority);
                        (d.first_response, d.resolution, None)
                    }
                };
            SlaTargets {
                first_response,
                resolution,
                // Divided first: no overflow, exact to the millisecond.
                warning_before: warning_before
                    .unwrap_or_else(|| first_response / 100 * i32::from(warning_percent)),
            }
        };
        Ok(SlaPolicy {
            low: targets(TicketPriority::Low),
            medium: targets(TicketPriority::Medium),
            high: targets(TicketPriority::High),
            critical: targets(TicketPriority::Critical),
        })
    }
}

fn priority(name: &str) -> Result<TicketPriority, SlaConfigError> {
    TicketPriority::ALL
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| SlaConfigError::UnknownPriority(name.to_string()))
}

/// `45s`, `30m`, `4h`, `3d`: a whole number and a unit.
fn parse_duration(text: &str) -> Result<Duration, SlaConfigError> {
    let bad = || SlaConfigError::BadDuration(text.to_string());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let duration = n
        .checked_mul(seconds_per_unit)
        .and_then(Duration::try_seconds)
        .ok_or_else(|| SlaConfigError::TooLong(text.to_string()))?;
    if duration > LONGEST {
        return Err(SlaConfigError::TooLong(text.to_string()));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str, percent: u8) -> Result<SlaPolicy, SlaConfigError> {
        SlaPolicy::configured(&text.parse()?, percent)
    }

    /// No configuration is the default policy, warning at 25 %.
    #[test]
    fn empty_configuration_gives_the_default_policy() {
        assert_eq!(
            policy("", DEFAULT_WARNING_PERCENT),
            Ok(SlaPolicy::default())
        );
    }

    /// Named priorities take the configured targets, the others keep the
    /// defaults; the percentage sets every warning not given explicitly.
    #[test]
    fn configured_priorities_override_the_defaults() {
        let p = policy(" critical=30m/2h , LOW=2d/10d/3h", 50).unwrap();
        assert_eq!(p.critical.first_response, Duration::minutes(30));
        assert_eq!(p.critical.resolution, Duration::hours(2));
        assert_eq!(p.critical.warning_before, Duration::minutes(15));
        assert_eq!(p.low.first_response, Duration::days(2));
        assert_eq!(p.low.resolution, Duration::days(10));
        assert_eq!(p.low.warning_before, Duration::hours(3));
        assert_eq!(p.high.first_response, Duration::hours(4));
        assert_eq!(p.high.warning_before, Duration::hours(2));
        assert_eq!(
            p.medium,
            SlaPolicy::configured(&Default::default(), 50)
                .unwrap()
                .medium
        );
    }

    /// A warning percentage of zero means no warning before a target.
    #[test]
    fn a_zero_percent_warning_comes_at_the_target() {
        let p = policy("HIGH=10s/1m", 0).unwrap();
        assert_eq!(p.high.first_response, Duration::seconds(10));
        assert_eq!(p.high.warning_before, Duration::zero());
    }

    /// Every kind of mistake is refused with an error naming it.
    #[test]
    fn malformed_configuration_is_refused_with_the_reason() {
        assert_eq!(
            policy("URGENT=1h/4h", 25),
            Err(SlaConfigError::UnknownPriority("URGENT".into()))
        );
        assert_eq!(
            policy("HIGH=1h/4h,HIGH=2h/8h", 25),
            Err(SlaConfigError::Repeated("HIGH"))
        );
        assert!(matches!(
            policy("HIGH=1h", 25),
            Err(SlaConfigError::Malformed { .. })
        ));
        assert!(matches!(
            policy("HIGH 1h/4h", 25),
            Err(SlaConfigError::Malformed { .. })
        ));
        assert!(matches!(
            policy("HIGH=1h/4h/1m/2m", 25),
            Err(SlaConfigError::Malformed { .. })
        ));
        for bad in [
            "HIGH=1x/4h",
            "HIGH=h/4h",
            "HIGH=60/4h",
            "HIGH=1.5h/4h",
            "HIGH=-1h/4h",
        ] {
            assert!(
                matches!(policy(bad, 25), Err(SlaConfigError::BadDuration(_))),
                "{bad}"
            );
        }
        assert_eq!(
            policy("HIGH=99999999999999999d/4h", 25),
            Err(SlaConfigError::TooLong("99999999999999999d".into()))
        );
        assert_eq!(
            policy("HIGH=1h/3651d", 25),
            Err(SlaConfigError::TooLong("3651d".into()))
        );
        assert_eq!(
            policy("LOW=0s/4h", 25),
            Err(SlaConfigError::NotPositive {
                priority: "LOW",
                what: "first-response"
            })
        );
        assert_eq!(policy("", 101), Err(SlaConfigError::WarningPercent(101)));
        let message = policy("URGENT=1h/4h", 25).unwrap_err().to_string();
        assert!(
            message.contains("URGENT") && message.contains("CRITICAL"),
            "{message}"
        );
    }
}
