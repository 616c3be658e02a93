//! The machine a figure was measured on, so a row in BENCHMARKS.md can be
//! compared with another only when the hardware matches.
//!
//! Cores, memory and model name are not enough for that: a cloud machine of
//! one kind reports "AMD EPYC" whatever host it lands on, and two such hosts
//! can run the same build at clearly different speeds (BENCHMARKS.md's
//! introduction gives an example). So a run also states the clock the OS
//! reports and the time of a fixed single-threaded workload measured at its
//! start: rows whose reference times differ were measured on hosts of
//! different speed.

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Cores, memory, CPU model and clock, as read from the OS, and the time
/// of the reference workload.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    /// The clock `/proc/cpuinfo` reports, when it does.
    pub mhz: Option<f64>,
    /// The best of three runs of [`reference_workload`].
    pub reference: Duration,
}

impl Machine {
    /// Reads this machine and times the reference workload (about a second
    /// in all); unknown parts are reported as such, never guessed.
    pub fn detect() -> Machine {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (cpu, mhz) = parse_cpuinfo(&cpuinfo);
        let reference = (0..3)
            .map(|_| {
                let started = Instant::now();
                black_box(reference_workload(black_box(REFERENCE_SIZE)));
                started.elapsed()
            })
            .min()
            .unwrap_or_default();
        Machine {
            cores,
            memory_gib,
            cpu,
            mhz,
            reference,
        }
    }
}

/// Numbers the reference workload sorts: big enough to leave the caches,
/// small enough to take a fraction of a second.
const REFERENCE_SIZE: usize = 1 << 22;

/// A fixed amount of single-threaded work of the kinds the scenarios do
/// (integer arithmetic, memory traffic, branches): sorts `n` pseudo-random
/// numbers and folds them into one.
pub fn reference_workload(n: usize) -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut numbers: Vec<u64> = (0..n)
        .map(|_| {
            // xorshift64: the same numbers on every machine.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        })
        .collect();
    numbers.sort_unstable();
    numbers.iter().fold(0u64, |acc, n| acc.rotate_left(5) ^ n)
}

/// The model name and clock of the first CPU in `/proc/cpuinfo`'s text.
fn parse_cpuinfo(text: &str) -> (String, Option<f64>) {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let cpu = field("model name").unwrap_or_else(|| "unknown CPU".to_string());
    let mhz = field("cpu MHz").and_then(|v| v.parse().ok());
    (cpu, mhz)
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cores, {:.1} GiB, {}",
            self.cores, self.memory_gib, self.cpu
        )?;
        if let Some(mhz) = self.mhz {
            write!(f, " at {mhz:.0} MHz")?;
        }
        write!(f, ", reference sort {} ms", self.reference.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_and_clock_come_from_the_first_cpu() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\
                    cpu MHz\t\t: 1996.250\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n\
                    cpu MHz\t\t: 2400.000\n";
        assert_eq!(parse_cpuinfo(text), ("AMD EPYC".to_string(), Some(1996.25)));
        assert_eq!(parse_cpuinfo(""), ("unknown CPU".to_string(), None));
    }

    #[test]
    fn a_row_names_the_clock_and_the_reference_time() {
        let machine = Machine {
            cores: 2,
            memory_gib: 23.5,
            cpu: "AMD EPYC".into(),
            mhz: Some(1996.25),
            reference: Duration::from_millis(412),
        };
        assert_eq!(
            machine.to_string(),
            "2 cores, 23.5 GiB, AMD EPYC at 1996 MHz, reference sort 412 ms"
        );
        let no_clock = Machine {
            mhz: None,
            ..machine
        };
        assert_eq!(
            no_clock.to_string(),
            "2 cores, 23.5 GiB, AMD EPYC, reference sort 412 ms"
        );
    }

    #[test]
    fn the_reference_workload_is_the_one_older_rows_were_timed_with() {
        // Pinned: a different workload would make every reference time in
        // BENCHMARKS.md incomparable with the new ones. (Computed
        // independently, in Python, from the same generator and fold.)
        assert_eq!(reference_workload(REFERENCE_SIZE), 0xbc21_fbc4_064c_d3d7);
    }
}
