//! Latency statistics and the run report.
//!
//! Percentiles are exact: every latency sample is kept, sorted once at the
//! end, and read with the nearest-rank method. The report can be rendered as
//! a human-readable block or as one JSON line (serialised by hand).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Nearest-rank percentile `p` (0–100) of an ascending `sorted` slice.
///
/// The rank is `ceil(p / 100 * n)` (at least 1), computed in integer
/// arithmetic on parts-per-million so that e.g. p99 of 100 samples is exactly
/// the 99th sample. Returns `None` for an empty slice or a non-finite `p`;
/// `p` outside 0–100 is clamped.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !p.is_finite() {
        return None;
    }
    let parts_per_million = (p.clamp(0.0, 100.0) * 10_000.0).round() as u128;
    let count = sorted.len() as u128;
    let rank = (parts_per_million * count).div_ceil(1_000_000).max(1);
    let index = usize::try_from(rank - 1).map_or(sorted.len() - 1, |i| i.min(sorted.len() - 1));
    sorted.get(index).copied()
}

/// Arithmetic mean of the samples, or `None` when there are none.
pub fn mean(samples: &[Duration]) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let total: u128 = samples.iter().map(Duration::as_nanos).sum();
    let nanos = total / samples.len() as u128;
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// Latency summary of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Median latency.
    pub p50: Duration,
    /// 90th percentile latency.
    pub p90: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
    /// Mean latency.
    pub mean: Duration,
}

impl Latency {
    /// Computes the summary from samples sorted ascending; `None` if empty.
    pub fn from_sorted(sorted: &[Duration]) -> Option<Latency> {
        Some(Latency {
            p50: percentile(sorted, 50.0)?,
            p90: percentile(sorted, 90.0)?,
            p99: percentile(sorted, 99.0)?,
            max: *sorted.last()?,
            mean: mean(sorted)?,
        })
    }
}

/// Everything reported about one benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Free-form label chosen with `--label`.
    pub label: String,
    /// Method and URL, for the human-readable report.
    pub target: String,
    /// Number of concurrent connections (worker threads).
    pub connections: usize,
    /// Measured requests: every attempt after warm-up, including failures.
    pub requests: u64,
    /// Responses whose status did not count as success.
    pub status_errors: u64,
    /// Attempts that failed with an I/O or protocol error (no status).
    pub io_errors: u64,
    /// Connections re-established during the measured phase.
    pub reconnects: u64,
    /// Number of responses per status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Wall-clock length of the measured phase.
    pub duration: Duration,
    /// Length of the unrecorded warm-up phase.
    pub warmup: Duration,
    /// Latency of the requests that got a complete response, if any did.
    pub latency: Option<Latency>,
    /// The first I/O error seen, to help diagnose failing runs.
    pub first_io_error: Option<String>,
}

impl Summary {
    /// Total errors: non-successful statuses plus I/O errors.
    pub fn errors(&self) -> u64 {
        self.status_errors + self.io_errors
    }

    /// Measured requests per second.
    pub fn rps(&self) -> f64 {
        let seconds = self.duration.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// Adapter that displays the summary as a single JSON line.
    pub fn json(&self) -> JsonReport<'_> {
        JsonReport(self)
    }

    /// Adapter that displays the summary as a human-readable block.
    pub fn human(&self) -> HumanReport<'_> {
        HumanReport(self)
    }
}

/// Milliseconds as a float.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Writes a finite float with fixed decimals, or `null` when not finite.
fn write_number(f: &mut fmt::Formatter<'_>, value: f64, decimals: usize) -> fmt::Result {
    if value.is_finite() {
        write!(f, "{value:.decimals$}")
    } else {
        f.write_str("null")
    }
}

/// Writes `text` as a JSON string literal, escaping as required.
fn write_json_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// [`Summary`] rendered as one line of JSON (see [`Summary::json`]).
#[derive(Debug, Clone, Copy)]
pub struct JsonReport<'a>(&'a Summary);

impl fmt::Display for JsonReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        f.write_str("{\"label\":")?;
        write_json_string(f, &s.label)?;
        write!(
            f,
            ",\"connections\":{},\"requests\":{},\"errors\":{},\"status_counts\":{{",
            s.connections,
            s.requests,
            s.errors()
        )?;
        for (i, (status, count)) in s.status_counts.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}\"{status}\":{count}")?;
        }
        f.write_str("},\"rps\":")?;
        write_number(f, s.rps(), 2)?;
        let latency = s.latency.as_ref();
        let fields = [
            ("p50_ms", latency.map(|l| l.p50)),
            ("p90_ms", latency.map(|l| l.p90)),
            ("p99_ms", latency.map(|l| l.p99)),
            ("max_ms", latency.map(|l| l.max)),
            ("mean_ms", latency.map(|l| l.mean)),
        ];
        for (name, value) in fields {
            write!(f, ",\"{name}\":")?;
            match value {
                Some(value) => write_number(f, millis(value), 3)?,
                None => f.write_str("null")?,
            }
        }
        f.write_str(",\"duration_s\":")?;
        write_number(f, s.duration.as_secs_f64(), 3)?;
        write!(
            f,
            ",\"io_errors\":{},\"status_errors\":{},\"reconnects\":{}}}",
            s.io_errors, s.status_errors, s.reconnects
        )
    }
}

/// [`Summary`] rendered as a multi-line human-readable block (see [`Summary::human`]).
#[derive(Debug, Clone, Copy)]
pub struct HumanReport<'a>(&'a Summary);

impl fmt::Display for HumanReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        writeln!(f, "isolate-bench [{}] {}", s.label, s.target)?;
        writeln!(
            f,
            "  connections  {} (warm-up {:.3} s, measured {:.3} s)",
            s.connections,
            s.warmup.as_secs_f64(),
            s.duration.as_secs_f64()
        )?;
        writeln!(f, "  requests     {} ({:.2} req/s)", s.requests, s.rps())?;
        writeln!(
            f,
            "  errors       {} (status {}, I/O {})",
            s.errors(),
            s.status_errors,
            s.io_errors
        )?;
        writeln!(f, "  reconnects   {}", s.reconnects)?;
        f.write_str("  statuses    ")?;
        if s.status_counts.is_empty() {
            f.write_str(" none")?;
        }
        for (status, count) in &s.status_counts {
            write!(f, " {status}={count}")?;
        }
        writeln!(f)?;
        match &s.latency {
            Some(l) => writeln!(
                f,
                "  latency ms   mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                millis(l.mean),
                millis(l.p50),
                millis(l.p90),
                millis(l.p99),
                millis(l.max)
            )?,
            None => writeln!(f, "  latency ms   no complete responses")?,
        }
        if let Some(error) = &s.first_io_error {
            writeln!(f, "  first I/O error: {error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred = ms(1..=100);
        assert_eq!(percentile(&hundred, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&hundred, 90.0), Some(Duration::from_millis(90)));
        assert_eq!(percentile(&hundred, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&hundred, 99.9), Some(Duration::from_millis(100)));
        assert_eq!(
            percentile(&hundred, 100.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(percentile(&hundred, 0.0), Some(Duration::from_millis(1)));

        let five = ms([10, 20, 30, 40, 50]);
        // Ranks: ceil(0.5*5)=3, ceil(0.9*5)=5, ceil(0.2*5)=1, ceil(0.21*5)=2.
        assert_eq!(percentile(&five, 50.0), Some(Duration::from_millis(30)));
        assert_eq!(percentile(&five, 90.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&five, 20.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&five, 21.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&five, 250.0), Some(Duration::from_millis(50)));

        let one = ms([7]);
        assert_eq!(percentile(&one, 1.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&one, f64::NAN), None);
    }

    #[test]
    fn latency_summary() {
        let samples = ms([1, 2, 3, 4, 10]);
        let latency = Latency::from_sorted(&samples).unwrap();
        assert_eq!(latency.p50, Duration::from_millis(3));
        assert_eq!(latency.max, Duration::from_millis(10));
        assert_eq!(latency.mean, Duration::from_millis(4));
        assert_eq!(Latency::from_sorted(&[]), None);
    }

    fn summary() -> Summary {
        Summary {
            label: "say \"hi\"\n".to_string(),
            target: "GET http://127.0.0.1/".to_string(),
            connections: 2,
            requests: 10,
            status_errors: 1,
            io_errors: 1,
            reconnects: 3,
            status_counts: BTreeMap::from([(200, 8), (503, 1)]),
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
            latency: Latency::from_sorted(&ms([1, 2, 3, 4, 5, 6, 7, 8, 9])),
            first_io_error: Some("connection refused".to_string()),
        }
    }

    #[test]
    fn json_line() {
        let json = summary().json().to_string();
        assert_eq!(
            json,
            "{\"label\":\"say \\\"hi\\\"\\n\",\"connections\":2,\"requests\":10,\"errors\":2,\
             \"status_counts\":{\"200\":8,\"503\":1},\"rps\":5.00,\"p50_ms\":5.000,\
             \"p90_ms\":9.000,\"p99_ms\":9.000,\"max_ms\":9.000,\"mean_ms\":5.000,\
             \"duration_s\":2.000,\"io_errors\":1,\"status_errors\":1,\"reconnects\":3}"
        );
        let mut empty = summary();
        empty.latency = None;
        empty.duration = Duration::ZERO;
        empty.status_counts.clear();
        let json = empty.json().to_string();
        assert!(json.contains("\"status_counts\":{},\"rps\":0.00,\"p50_ms\":null"));
        assert!(!json.contains('\n'));
    }

    #[test]
    fn human_block() {
        let text = summary().human().to_string();
        assert!(text.contains("requests     10 (5.00 req/s)"));
        assert!(text.contains("errors       2 (status 1, I/O 1)"));
        assert!(text.contains(" 200=8 503=1"));
        assert!(text.contains("p99 9.000"));
        assert!(text.contains("first I/O error: connection refused"));
    }
}
